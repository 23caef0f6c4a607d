// Ready-to-paste code for sending events to this Streams server with a source's write key.

export type SnippetKind = 'curl' | 'python' | 'node';

export const SNIPPET_LABELS: Record<SnippetKind, string> = {
  curl: 'curl',
  python: 'Python (Segment SDK)',
  node: 'Node.js (Segment SDK)',
};

export function snippet(kind: SnippetKind, origin: string, writeKey: string): string {
  switch (kind) {
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
