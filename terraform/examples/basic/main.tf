# Streams in an empty project, production defaults: destinations may not reach private
# addresses, one warm ingest instance, events kept forever. docs/DEPLOY.md walks through it.

provider "google" {
  project = var.project_id
  region  = var.region
}

provider "google-beta" {
  project = var.project_id
  region  = var.region
}

module "streams" {
  source = "../.."

  project_id  = var.project_id
  region      = var.region
  name_prefix = "streams"
  domains     = var.domains
  # A load balancer on `domains` (the default), or { kind = "direct" } with no domains for a
  # small deployment (docs/DEPLOY.md, "Choosing the edge").
  edge = var.edge

  # Production: STREAMS_ALLOW_PRIVATE_DESTINATIONS=false (the default, spelled out here).
  destination_egress = {
    allow_private_destinations = false
  }

  # The deduplication window stays in Firestore (the default). Past about 100 million events a
  # month a Memorystore for Valkey instance costs less (docs/DEPLOY.md, "Deduplication store"):
  # dedup_store = { kind = "valkey" }

  # Example override: keep more ingest instances warm for a bursty launch.
  function_sizes = {
    ingest = { min_instances = 1, max_instances = 100 }
  }
}
