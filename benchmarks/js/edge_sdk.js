// What a Node user would write with the official Edge SDK: init() then set() per user,
// `concurrency` users at a time with Promise.all batches. Prints one JSON line of figures.
//   node benchmarks/js/edge_sdk.js <edge_url> <project_uid> <n> <concurrency>
const Personalize = require("@contentstack/personalize-edge-sdk");

async function main() {
  const [edgeUrl, project, nText, cText] = process.argv.slice(2);
  const n = Number(nText);
  const c = Number(cText);
  Personalize.setEdgeApiUrl(edgeUrl);
  const t0 = performance.now();
  for (let start = 0; start < n; start += c) {
    const batch = [];
    for (let i = start; i < Math.min(n, start + c); i++) {
      batch.push(
        (async () => {
          const sdk = await Personalize.init(project, { userId: `js${i}` });
          await sdk.set({ c0: `v0-${i % 97}`, c1: i * 2 });
        })()
      );
    }
    await Promise.all(batch);
  }
  const seconds = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ users: n, seconds, requests: 2 * n }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
