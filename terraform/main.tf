# Streams on Google Cloud: every function of functions/, Pub/Sub wiring, Firestore, BigQuery and
# the API Gateway, in one apply into an empty project (docs/DEPLOY.md).

locals {
  source_root  = abspath(coalesce(var.source_root, "${path.module}/.."))
  requirements = file("${path.module}/requirements.txt")

  # Every function under functions/ (tests/unit/test_terraform.py fails when one is missing):
  # its trigger, what its service account may do, and its default size.
  #   trigger: http (behind the gateway) or pubsub (push subscriptions, OIDC-authenticated)
  #   access:  firestore      roles/datastore.user: configuration and state documents
  #            publish        roles/pubsub.publisher: source and deliveries topics are created
  #                           at run time, so the grant is project-wide
  #            wire           create topics + push subscriptions, actAs the push account
  #            bigquery_read  roles/bigquery.jobUser + dataViewer on the dataset
  #            bigquery_write dataEditor on the dataset (streaming inserts)
  #            dead_letters   publish to the dead-letter topic only
  #   size:    memory, vCPUs, concurrent requests (= gunicorn threads), timeout (s), min/max
  #            instances; the reasons are in docs/DEPLOY.md ("Sizes").
  functions = {
    ingest = {
      trigger = "http"
      access  = ["firestore", "publish"]
      # I/O-bound: a request waits ~15-40 ms for Pub/Sub's ack, its own CPU is 1.2 ms (one event)
      # to 7 ms (100). One warm instance spares SDKs cold starts.
      size = { memory = "1Gi", cpu = "1", concurrency = 80, timeout_seconds = 30, min_instances = 1, max_instances = 100 }
      # The browser SDKs it serves (docs/INGEST.md): run `make collect` before planning.
      assets = ["collect/dist/**"]
    }
    event_keys = {
      trigger = "http"
      access  = ["firestore", "publish", "wire"]
      size    = { memory = "512Mi", cpu = "1", concurrency = 20, timeout_seconds = 60, min_instances = 0, max_instances = 10 }
    }
    event_forwarding_rules = {
      trigger = "http"
      access  = ["firestore"]
      size    = { memory = "512Mi", cpu = "1", concurrency = 20, timeout_seconds = 60, min_instances = 0, max_instances = 10 }
    }
    event_transformations = {
      trigger = "http"
      access  = ["firestore", "bigquery_read"]
      # Test runs execute JavaScript in QuickJS (64 MB heap per context, one per thread).
      size = { memory = "1Gi", cpu = "1", concurrency = 8, timeout_seconds = 60, min_instances = 0, max_instances = 10 }
    }
    event_contracts = {
      trigger = "http"
      # bigquery_read: a schema proposed from recent events (event-contracts/proposal).
      access = ["firestore", "publish", "bigquery_read"]
      size   = { memory = "512Mi", cpu = "1", concurrency = 20, timeout_seconds = 60, min_instances = 0, max_instances = 10 }
    }
    destinations = {
      trigger = "http"
      access  = ["firestore", "wire"]
      size    = { memory = "512Mi", cpu = "1", concurrency = 20, timeout_seconds = 60, min_instances = 0, max_instances = 10 }
    }
    events = {
      trigger = "http"
      access  = ["firestore", "publish", "bigquery_read"]
      # Live streams (Server-Sent Events) hold a request and a thread for up to 300 s
      # (shared/services/live.py MAX_STREAM_SECONDS): the timeout must exceed it.
      size = { memory = "1Gi", cpu = "1", concurrency = 40, timeout_seconds = 330, min_instances = 0, max_instances = 20 }
    }
    streams = {
      trigger = "http"
      access  = ["firestore", "publish", "wire", "bigquery_read"]
      size    = { memory = "512Mi", cpu = "1", concurrency = 20, timeout_seconds = 60, min_instances = 0, max_instances = 10 }
    }
    governance = {
      trigger = "http"
      # Privacy settings, regulations and the audit log. A delete regulation runs inline: one
      # BigQuery DML statement (bigquery_read for the job, bigquery_write for the rows), scans of
      # retention-bounded Firestore collections, and deletion requests to destinations.
      access = ["firestore", "bigquery_read", "bigquery_write"]
      size   = { memory = "512Mi", cpu = "1", concurrency = 8, timeout_seconds = 300, min_instances = 0, max_instances = 5 }
    }
    api_docs = {
      trigger = "http"
      access  = []
      size    = { memory = "512Mi", cpu = "1", concurrency = 20, timeout_seconds = 60, min_instances = 0, max_instances = 10 }
    }
    console = {
      trigger = "http"
      access  = []
      # The built web console (docs/CONSOLE.md): run `make console` before planning.
      assets = ["console/dist/**"]
      # Static files: small, and cached by browsers (hashed assets are immutable).
      size = { memory = "256Mi", cpu = "1", concurrency = 80, timeout_seconds = 30, min_instances = 0, max_instances = 5 }
    }
    process = {
      trigger = "pubsub"
      access  = ["firestore", "publish", "bigquery_write"]
      # A message holds up to 2,500 events (500 KB). The timeout equals the push subscriptions'
      # ack deadline (60 s): a longer run would be redelivered while still running.
      size = { memory = "1Gi", cpu = "1", concurrency = 16, timeout_seconds = 60, min_instances = 0, max_instances = 100 }
    }
    deliver = {
      trigger = "pubsub"
      access  = ["firestore", "dead_letters"]
      # Each push mostly waits on a destination (10 s timeout; ~1 ms of CPU per delivery), so
      # many share a vCPU; each thread may hold a QuickJS context (heap capped by settings).
      size = { memory = "2Gi", cpu = "1", concurrency = 32, timeout_seconds = 60, min_instances = 0, max_instances = 100 }
    }
    dead_letters = {
      trigger = "pubsub"
      access  = ["firestore"]
      size    = { memory = "512Mi", cpu = "1", concurrency = 16, timeout_seconds = 60, min_instances = 0, max_instances = 10 }
    }
  }

  sizes = {
    for name, function in local.functions : name => {
      for field, default in function.size : field => coalesce(try(var.function_sizes[name][field], null), default)
    }
  }

  access_roles = {
    firestore     = ["roles/datastore.user"]
    publish       = ["roles/pubsub.publisher"]
    bigquery_read = ["roles/bigquery.jobUser"]
  }
  project_roles = {
    for name, function in local.functions : name => toset(flatten([
      for access in function.access : lookup(local.access_roles, access, [])
    ]))
  }
  http_functions   = { for name, function in local.functions : name => function if function.trigger == "http" }
  pubsub_functions = { for name, function in local.functions : name => function if function.trigger == "pubsub" }

  # Names the code fixes (shared/config.py default, shared/services/topology.py).
  dead_letters_topic        = "streams-dead-letters"
  dead_letters_subscription = "streams-dead-letters-record"

  # Every setting shared/config.py reads, for every function (tests/unit/test_terraform.py
  # checks none is missing; docs/DEPLOY.md lists the ones deliberately left unset).
  settings_environment = {
    STREAMS_PROJECT_ID                  = var.project_id
    STREAMS_BIGQUERY_DATASET            = module.datastores.bigquery_dataset
    STREAMS_ALLOW_PRIVATE_DESTINATIONS  = var.destination_egress.allow_private_destinations ? "true" : "false"
    STREAMS_TRUSTED_PROXY_HOPS          = tostring(var.settings.trusted_proxy_hops)
    STREAMS_WRITE_KEY_CACHE_SECONDS     = tostring(var.settings.write_key_cache_seconds)
    STREAMS_CONFIG_CACHE_SECONDS        = tostring(var.settings.config_cache_seconds)
    STREAMS_PUSH_SERVICE_ACCOUNT        = module.pubsub_identity.push_service_account_email
    STREAMS_DEAD_LETTERS_TOPIC          = local.dead_letters_topic
    STREAMS_DELIVERY_MIN_BACKOFF        = tostring(var.settings.delivery_min_backoff_seconds)
    STREAMS_DELIVERY_MAX_BACKOFF        = tostring(var.settings.delivery_max_backoff_seconds)
    STREAMS_DELIVERY_MAX_ATTEMPTS       = tostring(var.settings.delivery_max_attempts)
    STREAMS_PROCESS_MAX_ATTEMPTS        = tostring(var.settings.process_max_attempts)
    STREAMS_PROCESS_MAX_BACKOFF         = tostring(var.settings.process_max_backoff_seconds)
    STREAMS_TRANSFORM_CPU_MS            = tostring(var.settings.transform_cpu_ms)
    STREAMS_TRANSFORM_MEMORY_MB         = tostring(var.settings.transform_memory_mb)
    STREAMS_TRANSFORM_OUTPUT_KB         = tostring(var.settings.transform_output_kb)
    STREAMS_TRANSFORM_SANDBOX_MEMORY_MB = tostring(var.settings.transform_sandbox_memory_mb)
    # deliver publishes to customers' topics as this identity, which has no role on Streams' own.
    STREAMS_CUSTOMER_PUBLISHER_SERVICE_ACCOUNT = google_service_account.customer_publisher.email
  }
  common_environment = merge(local.settings_environment, var.extra_environment)
  # Where run-time-created subscriptions push: set on the HTTP functions, which create sources
  # and destinations (the pushed functions cannot know their own URL without a cycle, and do not
  # create subscriptions).
  wiring_environment = {
    STREAMS_PROCESS_PUSH_ENDPOINT = module.pubsub_functions["process"].uri
    STREAMS_DELIVER_PUSH_ENDPOINT = module.pubsub_functions["deliver"].uri
  }

  secret_environment = {
    for name in keys(local.functions) : name => merge(
      {
        for key, secret in var.secrets : secret.env => {
          secret = google_secret_manager_secret.secrets[key].secret_id
        } if contains(secret.functions, name)
      },
      local.secret_settings,
    )
  }
  # Settings read from Secret Manager by every function: each publishes to, or is pushed from,
  # Streams' own topics.
  secret_settings = {
    STREAMS_MESSAGE_SIGNING_KEY = {
      secret  = google_secret_manager_secret.message_signing_key.secret_id
      version = google_secret_manager_secret_version.message_signing_key.version
    }
  }

  # Members by access, keyed by function name (keys known at plan time, for for_each).
  members_with = {
    for access in ["wire", "bigquery_read", "bigquery_write", "dead_letters"] : access => {
      for name, function in local.functions : name => local.function_members[name]
      if contains(function.access, access)
    }
  }
  function_members = merge(
    { for name, function in module.http_functions : name => function.member },
    { for name, function in module.pubsub_functions : name => function.member },
  )
  apis = var.enable_apis ? toset([
    "apigateway.googleapis.com",
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "servicecontrol.googleapis.com",
    "servicemanagement.googleapis.com",
    "storage.googleapis.com",
  ]) : toset([])
}

resource "google_project_service" "apis" {
  for_each = local.apis

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

# --- sources and builds ---------------------------------------------------------------------

resource "google_storage_bucket" "sources" {
  project                     = var.project_id
  name                        = "${var.project_id}-${var.name_prefix}-sources"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true
  labels                      = var.labels

  lifecycle {
    precondition {
      condition     = alltrue([for name in keys(var.function_sizes) : contains(keys(local.functions), name)])
      error_message = "function_sizes names a function that does not exist: ${join(", ", setsubtract(keys(var.function_sizes), keys(local.functions)))}."
    }
    precondition {
      # modules/function cuts service account ids at 30 characters: they must stay distinct.
      condition     = length(distinct([for name in keys(local.functions) : trimsuffix(substr("${var.name_prefix}-${replace(name, "_", "-")}", 0, 30), "-")])) == length(local.functions)
      error_message = "name_prefix is too long: two functions' service account ids would be equal once cut to 30 characters."
    }
    precondition {
      condition     = alltrue(flatten([for secret in values(var.secrets) : [for name in secret.functions : contains(keys(local.functions), name)]]))
      error_message = "secrets.*.functions names a function that does not exist."
    }
  }

  depends_on = [google_project_service.apis]
}

# Cloud Build runs each function's build as this account (new projects' default build identity
# has no permissions).
resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-build"
  display_name = "Streams function builds"
  description  = "Identity of the Cloud Build runs that build the Streams functions."

  depends_on = [google_project_service.apis]
}

resource "google_project_iam_member" "build" {
  for_each = toset(["roles/cloudbuild.builds.builder", "roles/logging.logWriter"])

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.build.email}"
}

resource "google_storage_bucket_iam_member" "build_reads_sources" {
  bucket = google_storage_bucket.sources.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.build.email}"
}

resource "google_secret_manager_secret" "secrets" {
  for_each = var.secrets

  project   = var.project_id
  secret_id = "${var.name_prefix}-${each.key}"
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

# --- internal message signing and the customer publisher -----------------------------------

# Every message on Streams' own topics is signed with this key, and the pushed functions act
# only on messages that verify (shared/domain/signing.py): a message that reached an internal
# topic any other way can name no workspace. Made here as an ephemeral value and written to a
# write-only attribute, so it is in Secret Manager and never in the Terraform state.
ephemeral "random_password" "message_signing_key" {
  length  = 64
  special = false
}

resource "google_secret_manager_secret" "message_signing_key" {
  project   = var.project_id
  secret_id = "${var.name_prefix}-message-signing-key"
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "message_signing_key" {
  secret                 = google_secret_manager_secret.message_signing_key.id
  secret_data_wo         = ephemeral.random_password.message_signing_key.result
  secret_data_wo_version = 1 # raise to rotate (docs/DEPLOY.md)
}

# deliver publishes to customers' topics (pubsub destinations) as this identity. It holds no
# role in this project, so no destination config can make deliver write to Streams' own topics;
# customers grant it roles/pubsub.publisher on their topic (output customer_publisher).
resource "google_service_account" "customer_publisher" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-customer-pub"
  display_name = "Streams customer-topic publisher"
  description  = "Identity deliver impersonates to publish to customers' own topics; no role on Streams' topics."

  depends_on = [google_project_service.apis]
}

resource "google_service_account_iam_member" "deliver_acts_as_customer_publisher" {
  service_account_id = google_service_account.customer_publisher.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = module.pubsub_functions["deliver"].member
}

# Cloud Run writes a request log entry per push: at a billion events a month that is over a
# terabyte of logs (docs/COST.md). The pushed functions' request logs are excluded; their own
# logs (errors, warnings) are kept.
resource "google_logging_project_exclusion" "push_request_logs" {
  count = var.exclude_push_request_logs ? 1 : 0

  project     = var.project_id
  name        = "${var.name_prefix}-push-request-logs"
  description = "Request logs of the Pub/Sub-pushed Streams functions (one per message)."
  filter      = <<-EOT
    resource.type = "cloud_run_revision"
    AND log_id("run.googleapis.com/requests")
    AND resource.labels.service_name = (${join(" OR ", [for name in keys(local.pubsub_functions) : "\"${var.name_prefix}-${replace(name, "_", "-")}\""])})
  EOT

  depends_on = [google_project_service.apis]
}

# --- data stores ----------------------------------------------------------------------------

module "datastores" {
  source = "./modules/datastores"

  project_id = var.project_id
  labels     = var.labels

  firestore = {
    location_id       = coalesce(var.firestore.location_id, var.region)
    create_database   = var.firestore.create_database
    delete_protection = var.firestore.delete_protection
  }

  bigquery = {
    dataset_id                = var.bigquery.dataset_id
    location                  = coalesce(var.bigquery.location, var.region)
    deletion_protection       = var.bigquery.deletion_protection
    partition_expiration_days = var.bigquery.partition_expiration_days
    # Schemas, partitioning and clustering: the code's (shared/schemas/bigquery/events.json,
    # shared/domain/storage.py).
    tables = {
      events = {
        schema_file     = "${local.source_root}/shared/schemas/bigquery/events.json"
        partition_field = "received_at"
        clustering      = ["workspace_id", "event_type", "event_name"]
      }
    }
  }

  bigquery_readers = local.members_with["bigquery_read"]
  bigquery_writers = local.members_with["bigquery_write"]

  depends_on = [google_project_service.apis]
}

# --- Pub/Sub identity and wiring ------------------------------------------------------------

module "pubsub_identity" {
  source = "./modules/pubsub"

  project_id  = var.project_id
  name_prefix = var.name_prefix

  dead_letters = {
    topic               = local.dead_letters_topic
    subscription        = local.dead_letters_subscription
    endpoint            = module.pubsub_functions["dead_letters"].uri
    min_backoff_seconds = var.settings.delivery_min_backoff_seconds
    max_backoff_seconds = var.settings.delivery_max_backoff_seconds
  }

  wiring_members         = local.members_with["wire"]
  dead_letter_publishers = local.members_with["dead_letters"]

  depends_on = [google_project_service.apis]
}

# --- functions ------------------------------------------------------------------------------

module "pubsub_functions" {
  source   = "./modules/function"
  for_each = local.pubsub_functions

  project_id            = var.project_id
  region                = var.region
  name_prefix           = var.name_prefix
  name                  = each.key
  runtime               = var.runtime
  source_root           = local.source_root
  requirements          = local.requirements
  source_bucket         = google_storage_bucket.sources.name
  build_service_account = google_service_account.build.id
  size                  = local.sizes[each.key]
  environment           = local.common_environment
  secret_environment    = local.secret_environment[each.key]
  project_roles         = local.project_roles[each.key]
  labels                = var.labels

  # Only Pub/Sub, signing as the push account, invokes them.
  public   = false
  invokers = { push = module.pubsub_identity.push_service_account_member }

  vpc_connector = each.key == "deliver" && var.destination_egress.vpc_connector != null ? {
    connector       = var.destination_egress.vpc_connector
    egress_settings = var.destination_egress.egress_settings
  } : null

  depends_on = [google_project_iam_member.build, google_storage_bucket_iam_member.build_reads_sources]
}

module "http_functions" {
  source   = "./modules/function"
  for_each = local.http_functions

  project_id            = var.project_id
  region                = var.region
  name_prefix           = var.name_prefix
  name                  = each.key
  runtime               = var.runtime
  source_root           = local.source_root
  requirements          = local.requirements
  source_bucket         = google_storage_bucket.sources.name
  build_service_account = google_service_account.build.id
  size                  = local.sizes[each.key]
  asset_patterns        = try(each.value.assets, [])
  environment           = merge(local.common_environment, local.wiring_environment)
  secret_environment    = local.secret_environment[each.key]
  project_roles         = local.project_roles[each.key]
  labels                = var.labels

  # Public: callers authenticate to Streams itself (write keys, Bearer tokens), and the gateway
  # passes their Authorization header through untouched (disable_auth in the gateway config).
  public = true

  depends_on = [google_project_iam_member.build, google_storage_bucket_iam_member.build_reads_sources]
}

# --- public API -----------------------------------------------------------------------------

module "api" {
  source = "./modules/api"

  project_id    = var.project_id
  region        = coalesce(var.gateway.region, var.region)
  name_prefix   = var.name_prefix
  function_urls = { for name, function in module.http_functions : name => function.uri }
  labels        = var.labels

  depends_on = [google_project_service.apis]
}
