// Where SDKs and webhooks send events. Behind the load balancer every route shares this page's
// origin; with edge "direct" ingest has a run.app URL of its own, which the console function
// writes into the page (docs/DEPLOY.md, "Choosing the edge").

export function ingestOrigin(): string {
  const written = document.querySelector('meta[name="streams-ingest-origin"]')?.getAttribute('content');
  return written || window.location.origin;
}
