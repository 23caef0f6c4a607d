// Copies the browser SDKs Streams serves (shared/api/collect.py) from node_modules into dist/,
// with a manifest naming each file and the package versions. Only the files a browser loads:
// no source maps, no precompressed copies (the function zip carries text files only).
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const DIST = 'dist';
const SEGMENT = 'node_modules/@segment/analytics-next';
const RUDDERSTACK = 'node_modules/@rudderstack/analytics-js';
// analytics-next names its lazily loaded chunks `<name>.bundle.<content hash>.js`.
const CHUNK = /^[A-Za-z0-9_-]+\.bundle\.[0-9a-f]{8,}\.js$/;

function version(dir) {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version;
}

rmSync(DIST, { recursive: true, force: true });
mkdirSync(join(DIST, 'analytics-next', 'bundles'), { recursive: true });
mkdirSync(join(DIST, 'rudderstack'), { recursive: true });

// The standalone build: what Segment's snippet loads from analytics.js/v1/<key>/analytics.min.js.
copyFileSync(join(SEGMENT, 'dist/umd/standalone.js'), join(DIST, 'analytics-next/standalone.js'));
const chunks = readdirSync(join(SEGMENT, 'dist/umd')).filter((name) => CHUNK.test(name)).sort();
if (chunks.length === 0) throw new Error(`no chunk files in ${SEGMENT}/dist/umd`);
for (const name of chunks) {
  copyFileSync(join(SEGMENT, 'dist/umd', name), join(DIST, 'analytics-next/bundles', name));
}

// RudderStack publishes its CDN build (rsa.min.js) only to its CDN; the npm package's UMD build
// with every plugin bundled loads nothing from elsewhere at run time.
copyFileSync(
  join(RUDDERSTACK, 'dist/npm/modern/bundled/umd/index.js'),
  join(DIST, 'rudderstack/analytics.min.js'),
);

const manifest = {
  '@segment/analytics-next': version(SEGMENT),
  '@rudderstack/analytics-js': version(RUDDERSTACK),
  chunks,
};
writeFileSync(join(DIST, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
console.log(`collect/dist: analytics-next ${manifest['@segment/analytics-next']} (${chunks.length} chunks), ` +
  `RudderStack ${manifest['@rudderstack/analytics-js']}`);
