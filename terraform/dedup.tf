# The deduplication store (var.dedup_store; docs/DEPLOY.md, "Deduplication store"): where process
# claims each event for 48 hours, so a redelivered or duplicate event is processed once. Firestore
# (the default) needs nothing here beyond its TTL policy (modules/datastores, event_claims).
# Valkey is a Memorystore for Valkey instance with a private address in a VPC network, which the
# functions that read or write claims (access "dedup" in main.tf) reach over Direct VPC egress
# and authenticate to with their own service account's access token (IAM authentication).

locals {
  valkey = var.dedup_store.kind == "valkey"

  # The given network and subnet, or the ones below (null with Firestore).
  dedup_network    = local.valkey ? coalesce(var.dedup_store.network, one(google_compute_network.dedup[*].id)) : null
  dedup_subnetwork = local.valkey ? coalesce(var.dedup_store.subnetwork, one(google_compute_subnetwork.dedup[*].id)) : null
  # A Shared VPC's service connection policy lives in the network's (host) project.
  dedup_network_project = local.valkey ? split("/", local.dedup_network)[1] : var.project_id

  # The instance's primary endpoint (cluster mode disabled: one primary, one reader endpoint),
  # which the Private Service Connect automation gives an address in the subnet. Unknown until
  # the instance exists; null when it has none (or several), which the instance's postcondition
  # refuses with its own message.
  valkey_primary = try(one(flatten([
    for instance in google_memorystore_instance.dedup : [
      for endpoint in instance.endpoints : [
        for connection in endpoint.connections : [
          for psc in connection.psc_auto_connection : psc if psc.connection_type == "CONNECTION_TYPE_PRIMARY"
        ]
      ]
    ]
  ])), null)
  # The settings shared/config.py reads for the Valkey claims adapter, given only to the
  # functions with access "dedup" and only when the store is Valkey; without them those
  # functions keep their claims in Firestore. IAM authentication: the password is the
  # function's own access token, the user `default`.
  valkey_environment = {
    STREAMS_VALKEY_URL      = try("redis://${local.valkey_primary.ip_address}:${local.valkey_primary.port}/0", null)
    STREAMS_VALKEY_IAM_AUTH = "true"
  }
  # The functions that reach the store: access "dedup", and the store is Valkey. deliver only
  # without destination_egress's connector: a function has a connector or Direct VPC egress,
  # never both, and deliver then keeps every record in Firestore (which every reader reads
  # first anyway).
  dedup_users = {
    for name, function in local.functions : name => local.valkey && contains(function.access, "dedup") && !(name == "deliver" && var.destination_egress.vpc_connector != null)
  }
  dedup_environment = {
    for name, function in local.functions : name => local.dedup_users[name] ? local.valkey_environment : {}
  }
  # Direct VPC egress for the same functions: only private ranges go through the VPC, so
  # Firestore, Pub/Sub and BigQuery keep their usual path (no Cloud NAT or Private Google
  # Access needed).
  dedup_direct_vpc = {
    for name, function in local.functions : name => local.dedup_users[name] ? {
      network    = local.dedup_network
      subnetwork = local.dedup_subnetwork
      egress     = "PRIVATE_RANGES_ONLY"
    } : null
  }
}

# A network of its own when none is given: it holds nothing but the instance's endpoints and the
# functions' egress addresses.
resource "google_compute_network" "dedup" {
  #checkov:skip=CKV2_GCP_18:No VM runs in this network; the implied rules (deny all ingress, allow egress) are all its traffic needs, and a rule of our own would only repeat them
  count = local.valkey && var.dedup_store.network == null ? 1 : 0

  project                 = var.project_id
  name                    = "${var.name_prefix}-dedup"
  description             = "Streams: the deduplication store's Memorystore endpoints and the Direct VPC egress of the functions that use it."
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"

  depends_on = [time_sleep.apis_ready]
}

# A /22: Direct VPC egress takes two addresses per instance of each function (and reserves them
# 16 at a time), Cloud Run asks for at least a /26, and the four functions' maxima at scale
# "large" come to 140 instances; the instance's endpoints take two more.
resource "google_compute_subnetwork" "dedup" {
  #checkov:skip=CKV_GCP_26:VPC flow logs would record every claim's round trip to Memorystore, a cost per event; nothing else runs in this network
  count = local.valkey && var.dedup_store.network == null ? 1 : 0

  project       = var.project_id
  name          = "${var.name_prefix}-dedup-${var.region}"
  description   = "Streams: the deduplication store's endpoints and the egress addresses of the functions that use it."
  region        = var.region
  network       = google_compute_network.dedup[0].id
  ip_cidr_range = "10.64.0.0/22"
  # Google APIs from private addresses: not used (egress is private ranges only), but nothing
  # in this subnet needs a public path to them either.
  private_ip_google_access = true
}

# Lets Memorystore create the instance's Private Service Connect endpoints in the subnet (the
# "service connectivity automation" its networking guide requires before an instance exists).
resource "google_network_connectivity_service_connection_policy" "dedup" {
  count = local.valkey && var.dedup_store.create_connection_policy ? 1 : 0

  project       = local.dedup_network_project
  location      = var.region
  name          = "${var.name_prefix}-dedup-memorystore"
  description   = "Memorystore endpoints for the Streams deduplication store."
  service_class = "gcp-memorystore"
  network       = local.dedup_network

  psc_config {
    subnetworks = [local.dedup_subnetwork]
  }

  depends_on = [time_sleep.apis_ready]
}

resource "google_memorystore_instance" "dedup" {
  count = local.valkey ? 1 : 0

  project     = var.project_id
  location    = var.region
  instance_id = "${var.name_prefix}-dedup"
  labels      = var.labels

  engine_version = "VALKEY_8_0"
  # One shard behind a primary endpoint: the claims adapter is a plain (not cluster-aware)
  # client, and the window fits one node up to highmem-xlarge (docs/DEPLOY.md).
  mode          = "CLUSTER_DISABLED"
  shard_count   = 1
  replica_count = var.dedup_store.replica_count
  node_type     = upper(replace(var.dedup_store.node_type, "-", "_"))

  # Only identities holding roles/memorystore.dbConnectionUser connect (the accounts of the
  # functions with access "dedup"), each with its own short-lived token; there is no shared password to keep.
  authorization_mode = "IAM_AUTH"
  # Not TLS: the claims client connects in plain text inside the VPC (docs/DEPLOY.md says so).
  # Immutable: turning it on later replaces the instance, and so starts a new window.
  transit_encryption_mode = "TRANSIT_ENCRYPTION_DISABLED"

  engine_configs = {
    # A full instance refuses new claims (process fails the message and Pub/Sub retries it)
    # instead of evicting live ones, which would silently shorten the window.
    "maxmemory-policy" = "noeviction"
  }

  # The store holds nothing that outlives 48 hours, and switching dedup_store.kind back to
  # firestore must be able to delete it.
  deletion_protection_enabled = false

  desired_auto_created_endpoints {
    network    = local.dedup_network
    project_id = var.project_id
  }

  lifecycle {
    precondition {
      condition     = var.dedup_store.subnetwork == null || try(split("/", var.dedup_store.subnetwork)[3] == var.region, false)
      error_message = "dedup_store.subnetwork must be in region ${var.region}, where the functions and the instance are."
    }
    postcondition {
      condition = length(try(flatten([
        for endpoint in self.endpoints : [
          for connection in endpoint.connections : [
            for psc in connection.psc_auto_connection : psc if psc.connection_type == "CONNECTION_TYPE_PRIMARY"
          ]
        ]
      ]), [])) == 1
      error_message = "The Memorystore instance has no primary endpoint in the network, so the functions could not be given STREAMS_VALKEY_URL: check the service connection policy (gcp-memorystore) of the network in ${var.region}."
    }
  }

  depends_on = [google_network_connectivity_service_connection_policy.dedup, time_sleep.apis_ready]
}
