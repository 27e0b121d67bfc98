// Drives the official Personalize JS Edge SDK, unmodified, against an emulator.
// Usage: node sdk_scenario.mjs EDGE_URL PROJECT_UID
// Prints one JSON object with what the SDK saw; test_js_sdk.py checks it and the emulator's
// state. The SDK checks no status code except the manifest's, so the Python side must look at
// what was stored: a refused write would pass silently here.
import Personalize from '@contentstack/personalize-edge-sdk';

const [edgeUrl, projectUid] = process.argv.slice(2);
if (!edgeUrl || !projectUid) {
  console.error('usage: node sdk_scenario.mjs EDGE_URL PROJECT_UID');
  process.exit(2);
}
Personalize.setEdgeApiUrl(edgeUrl);

// 1. A known user: attributes, a custom event and an impression.
const known = await Personalize.init(projectUid, { userId: 'known-user-1' });
const knownBefore = known.getVariants();
await known.set({ plan: 'gold', ltv: 2500 });
await known.triggerEvent('signup');
await known.triggerImpression('a');
// Initialised again, the manifest reflects the attributes just set (audience "Big spenders").
const knownAgain = await Personalize.init(projectUid, { userId: 'known-user-1' });

// 2. An anonymous visitor: the edge generates the uid in the manifest's response header.
const visitor = await Personalize.init(projectUid);
const generatedUid = visitor.getUserId();
await visitor.set({ plan: 'silver', ltv: '2500' }); // a number sent as text
await visitor.triggerImpressions({ experienceShortUids: ['a'] });
const visitorAgain = await Personalize.init(projectUid, { userId: generatedUid });

// 3. The visitor logs in: the anonymous attributes are merged into the known user.
await visitor.setUserId('known-user-2', { preserveUserAttributes: true });
await visitor.set({ loggedIn: true });
await visitor.triggerEvent('login');

console.log(
  JSON.stringify({
    known: {
      userId: known.getUserId(),
      variantsBefore: knownBefore,
      variantsAfterSet: knownAgain.getVariants(),
    },
    visitor: {
      generatedUid,
      variants: visitorAgain.getVariants(),
      userIdAfterLogin: visitor.getUserId(),
    },
  }),
);
