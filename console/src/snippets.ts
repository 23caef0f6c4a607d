// Ready-to-paste code for sending events to this Streams server with a source's write key.

export type SnippetKind = 'web' | 'curl' | 'python' | 'node' | 'kotlin' | 'swift';

export const SNIPPET_LABELS: Record<SnippetKind, string> = {
  web: 'Website (analytics.js)',
  curl: 'curl',
  python: 'Python (Segment SDK)',
  node: 'Node.js (Segment SDK)',
  kotlin: 'Android (analytics-kotlin)',
  swift: 'iOS (analytics-swift)',
};

// Segment's standard snippet (@segment/snippet 5.2.1, minified) as Segment's app renders it,
// with Segment's CDN host replaced by this server's. The server serves analytics.js itself
// (GET /analytics.js/v1/<key>/analytics.min.js) and its settings, which name this server as
// the API host: no setting is passed inline. `analytics._cdn` is Segment's documented switch
// for a self-hosted CDN: analytics.js only finds its CDN from its script URL over https.
function segmentSnippet(origin: string, writeKey: string): string {
  const key = JSON.stringify(writeKey);
  return [
    '<script>',
    '  !function(){var i="analytics",analytics=window[i]=window[i]||[];if(!analytics.initialize)if(analytics.invoked)window.console&&console.error&&console.error("Segment snippet included twice.");else{analytics.invoked=!0;analytics.methods=["trackSubmit","trackClick","trackLink","trackForm","pageview","identify","reset","group","track","ready","alias","debug","page","screen","once","off","on","addSourceMiddleware","addIntegrationMiddleware","setAnonymousId","addDestinationMiddleware","register"];analytics.factory=function(e){return function(){if(window[i].initialized)return window[i][e].apply(window[i],arguments);var n=Array.prototype.slice.call(arguments);if(["track","screen","alias","group","page","identify"].indexOf(e)>-1){var c=document.querySelector("link[rel=\'canonical\']");n.push({__t:"bpc",c:c&&c.getAttribute("href")||void 0,p:location.pathname,u:location.href,s:location.search,t:document.title,r:document.referrer})}n.unshift(e);analytics.push(n);return analytics}};for(var n=0;n<analytics.methods.length;n++){var key=analytics.methods[n];analytics[key]=analytics.factory(key)}analytics.load=function(key,n){var t=document.createElement("script");t.type="text/javascript";t.async=!0;t.setAttribute("data-global-segment-analytics-key",i);t.src="' +
      origin +
      '/analytics.js/v1/" + key + "/analytics.min.js";var r=document.getElementsByTagName("script")[0];r.parentNode.insertBefore(t,r);analytics._loadOptions=n};analytics._writeKey=' +
      key +
      ';analytics._cdn=' +
      JSON.stringify(origin) +
      ';analytics.SNIPPET_VERSION="5.2.1";',
    `  analytics.load(${key});`,
    '  analytics.page();',
    '  }}();',
    '</script>',
  ].join('\n');
}

export function snippet(kind: SnippetKind, origin: string, writeKey: string): string {
  // The mobile SDKs take host[:port]/v1, without a scheme, and always speak https.
  const apiHost = `${new URL(origin).host}/v1`;
  switch (kind) {
    case 'web':
      return segmentSnippet(origin, writeKey);
    case 'kotlin':
      return [
        '// build.gradle: implementation("com.segment.analytics.kotlin:android:<version>")',
        'import com.segment.analytics.kotlin.android.Analytics',
        '',
        `val analytics = Analytics("${writeKey}", applicationContext) {`,
        `    apiHost = "${apiHost}"`,
        `    cdnHost = "${apiHost}"`,
        '}',
        ...httpsOnly(origin, '//'),
        'analytics.track("Signed Up", buildJsonObject { put("plan", "pro") })',
      ].join('\n');
    case 'swift':
      return [
        '// Swift Package Manager: https://github.com/segmentio/analytics-swift',
        'import Segment',
        '',
        'let analytics = Analytics(configuration: Configuration(writeKey: ' +
          `"${writeKey}")`,
        `    .apiHost("${apiHost}")`,
        `    .cdnHost("${apiHost}"))`,
        ...httpsOnly(origin, '//'),
        'analytics.track(name: "Signed Up", properties: ["plan": "pro"])',
      ].join('\n');
    case 'curl':
      return [
        `curl -X POST ${origin}/v1/track \\`,
        `  -H "X-Write-Key: ${writeKey}" -H "Content-Type: application/json" \\`,
        `  -d '{"event": "Signed Up", "userId": "user-123", "properties": {"plan": "pro"}}'`,
      ].join('\n');
    case 'python':
      return [
        '# pip install segment-analytics-python',
        'import segment.analytics as analytics',
        '',
        `analytics.write_key = "${writeKey}"`,
        `analytics.host = "${origin}"`,
        '',
        'analytics.identify("user-123", {"plan": "pro"})',
        'analytics.track("user-123", "Signed Up", {"plan": "pro"})',
        'analytics.flush()',
      ].join('\n');
    case 'node':
      return [
        '// npm install @segment/analytics-node',
        "import { Analytics } from '@segment/analytics-node';",
        '',
        `const analytics = new Analytics({ writeKey: '${writeKey}', host: '${origin}' });`,
        '',
        "analytics.identify({ userId: 'user-123', traits: { plan: 'pro' } });",
        "analytics.track({ userId: 'user-123', event: 'Signed Up', properties: { plan: 'pro' } });",
        'await analytics.closeAndFlush();',
      ].join('\n');
  }
}

// The mobile SDKs build https:// URLs themselves: say so when this server is reached over http.
function httpsOnly(origin: string, comment: string): string[] {
  return origin.startsWith('https:')
    ? ['']
    : ['', `${comment} The SDK sends over https only: serve Streams behind TLS for real devices.`, ''];
}
