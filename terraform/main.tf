# Streams on Google Cloud: every function of functions/, Pub/Sub wiring, Firestore, BigQuery and
# the edge (var.edge: the load balancer on the customer's domain, or the functions' own URLs), in
# one apply into an empty project (docs/DEPLOY.md).

locals {
  source_root  = abspath(coalesce(var.source_root, "${path.module}/.."))
  requirements = file("${path.module}/requirements.txt")

  # var.edge: "direct" deploys no load balancer; the HTTP functions answer at their run.app URLs.
  direct = var.edge.kind == "direct"
  # The X-Forwarded-For entries Google's front end appends: `<client>,<load balancer>` behind
  # the load balancer; Cloud Run's own front end writes `<client>` alone (docs/DEPLOY.md).
  trusted_proxy_hops = coalesce(var.settings.trusted_proxy_hops, local.direct ? 1 : 2)

  # Every function under functions/ (tests/unit/test_terraform.py fails when one is missing):
  # its trigger, what its service account may do, and its default size.
  #   trigger: http (public, behind the edge) or pubsub (push subscriptions, OIDC-authenticated)
  #   access:  firestore      roles/datastore.user: configuration and state documents
  #            publish_sources     roles/pubsub.publisher on each source topic, granted by the
  #            publish_deliveries  wiring as it creates the topic (STREAMS_*_TOPIC_PUBLISHERS):
  #                                the topics exist only at run time, and IAM conditions cannot
  #                                name Pub/Sub topics, so no function publishes project-wide
  #            wire           create topics, grant their publishers, create push subscriptions,
  #                           actAs the push account: the private wiring function alone
  #            wiring_client  may invoke the wiring function (STREAMS_WIRING_URL)
  #            bigquery_read  roles/bigquery.jobUser + dataViewer on the dataset
  #            bigquery_write dataEditor on the dataset (streaming inserts)
  #            warehouse      sync the per-workspace warehouse views (modules/datastores,
  #                           warehouse_syncers): create `<dataset>_ws_*` datasets and write their
  #                           views, authorise them on the events dataset, DELETE expired events
  #            dead_letters   publish to the dead-letter topic only
  #            dedup          read and write deduplication claims and deliver's marks
  #                           (var.dedup_store, dedup.tf):
  #                           with kind "valkey", Direct VPC egress to the Memorystore instance,
  #                           its address (STREAMS_VALKEY_URL) and roles/memorystore.dbConnectionUser
  #   size:    memory, vCPUs, concurrent requests (= gunicorn threads), timeout (s), min/max
  #            instances; the reasons are in docs/DEPLOY.md ("Sizes").
  functions = {
    ingest = {
      trigger = "http"
      access  = ["firestore", "publish_sources"]
      # I/O-bound: a request waits ~15-40 ms for Pub/Sub's ack, its own CPU is ~0.4-0.7 ms (one
      # event) to ~4-7 ms (100). Served asynchronously (functions-framework's ASGI mode, chosen
      # by functions/ingest/main.py itself; docs/INGEST.md "Server"): the concurrent requests
      # wait as coroutines on one event loop, not as threads (THREADS does not apply to it).
      # Scales to zero: a new instance answers in ~0.4 s (REST clients,
      # docs/DEPLOY.md "Cold starts"); `function_sizes` sets min_instances = 1 to spare even that.
      size = { memory = "1Gi", cpu = "1", concurrency = 80, timeout_seconds = 30, min_instances = 0, max_instances = 100 }
      # The browser SDKs it serves (docs/INGEST.md): run `make collect` before planning.
      assets = ["collect/dist/**"]
    }
    event_keys = {
      trigger = "http"
      access  = ["firestore", "publish_sources", "wiring_client"]
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
      # dedup: releasing quarantined events reads their claims and releases them, so that
      # process takes them again.
      access = ["firestore", "publish_sources", "bigquery_read", "dedup"]
      size   = { memory = "512Mi", cpu = "1", concurrency = 20, timeout_seconds = 60, min_instances = 0, max_instances = 10 }
    }
    destinations = {
      trigger = "http"
      # dedup: a destination's recent deliveries include those deliver keeps as marks there.
      access = ["firestore", "wiring_client", "dedup"]
      size   = { memory = "512Mi", cpu = "1", concurrency = 20, timeout_seconds = 60, min_instances = 0, max_instances = 10 }
    }
    events = {
      trigger = "http"
      # Dead-letter replay publishes to source and deliveries topics; warehouse: a workspace's
      # sync on demand (POST .../warehouse/sync), the same work as the scheduled one; dedup: trace
      # reads an event's claim, dead-letter replay releases it.
      access = ["firestore", "publish_sources", "publish_deliveries", "bigquery_read", "warehouse", "dedup"]
      # Live streams (Server-Sent Events) hold a request and a thread for up to 300 s
      # (shared/services/live.py MAX_STREAM_SECONDS): the timeout must exceed it.
      size = { memory = "1Gi", cpu = "1", concurrency = 40, timeout_seconds = 330, min_instances = 0, max_instances = 20 }
    }
    streams = {
      trigger = "http"
      access  = ["firestore", "publish_sources", "wiring_client", "bigquery_read"]
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
      # Static files: small, and cached by browsers (hashed assets are immutable). With edge
      # "direct" it also forwards the management API (console_environment below), the live
      # stream included: then its timeout must exceed the stream's, as events' does.
      size = { memory = "256Mi", cpu = "1", concurrency = 80, timeout_seconds = local.direct ? 330 : 30, min_instances = 0, max_instances = 5 }
    }
    # Private (invoked only by the wiring clients above, IAM-checked): the one identity that
    # may create topics and push subscriptions, grant topics' publishers and act as the push
    # account, and only as shared/domain/wiring.py allows.
    wiring = {
      trigger  = "http"
      internal = true
      access   = ["wire"]
      size     = { memory = "512Mi", cpu = "1", concurrency = 20, timeout_seconds = 60, min_instances = 0, max_instances = 5 }
    }
    # Private (invoked only by the Cloud Scheduler job's own account, IAM-checked; warehouse.tf):
    # the hourly sync of every workspace's warehouse views (functions/warehouse/main.py).
    # Workspaces sync one after another in one request, so one request at a time on one
    # instance: a run still going when the next is due has Cloud Run refuse the newcomer (429),
    # not race it. The timeout is Cloud Scheduler's longest attempt deadline for HTTP targets.
    warehouse = {
      trigger  = "http"
      internal = true
      access   = ["firestore", "bigquery_read", "warehouse"]
      size     = { memory = "512Mi", cpu = "1", concurrency = 1, timeout_seconds = 1800, min_instances = 0, max_instances = 1 }
    }
    process = {
      trigger = "pubsub"
      # dedup: one claim per event, the deduplication window.
      access = ["firestore", "publish_deliveries", "bigquery_write", "dedup"]
      # A message holds up to 2,500 events (500 KB). The timeout equals the push subscriptions'
      # ack deadline (60 s): a longer run would be redelivered while still running.
      size = { memory = "1Gi", cpu = "1", concurrency = 16, timeout_seconds = 60, min_instances = 0, max_instances = 100 }
    }
    deliver = {
      trigger = "pubsub"
      # dedup: a message whose deliveries were all accepted at once is a mark there, not a
      # Firestore record (shared/services/delivery_records.py); not with destination_egress's
      # connector (dedup.tf, dedup_users).
      access = ["firestore", "dead_letters", "dedup"]
      # Each push mostly waits on a destination (10 s timeout; ~1 ms of CPU per delivery), so
      # many share a vCPU; each thread may hold a QuickJS context (heap capped by settings).
      size = { memory = "2Gi", cpu = "1", concurrency = 32, timeout_seconds = 60, min_instances = 0, max_instances = 100 }
    }
    dead_letters = {
      trigger = "pubsub"
      # dedup: recording a dead-lettered source message reads its events' claims.
      access = ["firestore", "dedup"]
      size   = { memory = "512Mi", cpu = "1", concurrency = 16, timeout_seconds = 60, min_instances = 0, max_instances = 10 }
    }
  }

  # A new project's regional Cloud Run CPU and memory quotas are far below what every function
  # at max_instances above would take (416 vCPU and 472 GiB): at scale "starter" (the
  # default) each function's maximum is capped here, to 64 vCPU and 60 GiB in all, which
  # carries 100 million events a month with room for peaks (docs/DEPLOY.md, Sizing). "large"
  # lifts the caps once the project's quota has been raised.
  starter_max_instances = {
    ingest       = 10
    process      = 10
    deliver      = 10
    events       = 5
    dead_letters = 3
    governance   = 2
    console      = 2
    # One static document (and the load balancer's JSON 404s), like the console's files.
    api_docs  = 2
    wiring    = 1
    warehouse = 1
  }
  scaled_sizes = {
    for name, function in local.functions : name => merge(function.size, {
      max_instances = var.scale == "large" ? function.size.max_instances : min(function.size.max_instances, lookup(local.starter_max_instances, name, 3))
    })
  }
  sizes = {
    for name, size in local.scaled_sizes : name => {
      for field, default in size : field => coalesce(try(var.function_sizes[name][field], null), default)
    }
  }

  access_roles = {
    firestore     = ["roles/datastore.user"]
    bigquery_read = ["roles/bigquery.jobUser"]
    # On the project, as Memorystore's IAM authentication guide grants it (Terraform has no IAM
    # resource for one instance): it covers every instance there, and with one Streams per
    # project that is the dedup store's.
    dedup = local.valkey ? ["roles/memorystore.dbConnectionUser"] : []
  }
  project_roles = {
    for name, function in local.functions : name => toset(flatten([
      for access in function.access : access == "dedup" && !local.dedup_users[name] ? [] : lookup(local.access_roles, access, [])
    ]))
  }
  http_functions     = { for name, function in local.functions : name => function if function.trigger == "http" && !try(function.internal, false) }
  internal_functions = { for name, function in local.functions : name => function if try(function.internal, false) }
  pubsub_functions   = { for name, function in local.functions : name => function if function.trigger == "pubsub" }

  # Names the code fixes (shared/config.py default, shared/services/topology.py).
  dead_letters_topic        = "streams-dead-letters"
  dead_letters_subscription = "streams-dead-letters-record"

  # Every setting shared/config.py reads, for every function (tests/unit/test_terraform.py
  # checks none is missing; docs/DEPLOY.md lists the ones deliberately left unset).
  settings_environment = {
    STREAMS_PROJECT_ID                  = var.project_id
    STREAMS_BIGQUERY_DATASET            = module.datastores.bigquery_dataset
    STREAMS_ALLOW_PRIVATE_DESTINATIONS  = var.destination_egress.allow_private_destinations ? "true" : "false"
    STREAMS_TRUSTED_PROXY_HOPS          = tostring(local.trusted_proxy_hops)
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
    # Granted roles/pubsub.publisher on each topic of their kind as the wiring creates it.
    STREAMS_SOURCE_TOPIC_PUBLISHERS   = join(",", local.topic_publishers.publish_sources)
    STREAMS_DELIVERY_TOPIC_PUBLISHERS = join(",", local.topic_publishers.publish_deliveries)
  }
  common_environment = merge(local.settings_environment, var.extra_environment)
  # Where run-time-created subscriptions push: set on the HTTP functions, which create sources
  # and destinations (the pushed functions cannot know their own URL without a cycle, and do not
  # create subscriptions).
  wiring_environment = {
    STREAMS_PROCESS_PUSH_ENDPOINT = module.pubsub_functions["process"].uri
    STREAMS_DELIVER_PUSH_ENDPOINT = module.pubsub_functions["deliver"].uri
    # The functions that create sources and destinations wire through the wiring function.
    STREAMS_WIRING_URL = module.internal_functions["wiring"].uri
  }
  # Only ingest holds the geo database (in its zip, terraform/build.py), so only ingest is told
  # where it is; "" is no geo enrichment.
  # With edge "direct" the console's origin is the console function's own run.app URL, so the
  # console function forwards the management API's paths to the functions serving them
  # (shared/http/forward.py; docs/DEPLOY.md, "Choosing the edge"). Their URLs are Cloud Run's
  # deterministic ones, https://<service>-<project number>.<region>.run.app: the functions'
  # `uri` outputs would make the console's environment depend on the module creating it. Cloud
  # Run assigns one when "<service>-<project number>" fits a 63-character DNS label, which a
  # 12-character name_prefix, the longest function name and a project number always do.
  # Never ingest (SDKs send to their own host, which the console's snippets and webhook URLs
  # name: STREAMS_CONSOLE_INGEST_URL) nor the console itself.
  run_app_urls = local.direct ? {
    for name in keys(local.http_functions) :
    name => "https://${var.name_prefix}-${replace(name, "_", "-")}-${one(data.google_project.this[*].number)}.${var.region}.run.app"
  } : {}
  console_api_functions = [for name in keys(local.http_functions) : name if !contains(["console", "ingest"], name)]
  console_environment = local.direct ? {
    STREAMS_CONSOLE_API_URLS   = jsonencode({ for name in local.console_api_functions : name => local.run_app_urls[name] })
    STREAMS_CONSOLE_INGEST_URL = local.run_app_urls["ingest"]
  } : {}

  ingest_environment = {
    STREAMS_GEO_DATABASE = var.geo_database == null ? "" : var.geo_database
  }
  ingest_assets = var.geo_database == null ? [] : [var.geo_database]
  # The wiring function itself wires directly (no STREAMS_WIRING_URL).
  internal_environment = { for key, value in local.wiring_environment : key => value if key != "STREAMS_WIRING_URL" }

  secret_environment = {
    for name in keys(local.functions) : name => merge(
      {
        for key, secret in var.secrets : secret.env => {
          secret = google_secret_manager_secret.secrets[key].secret_id
        } if contains(secret.functions, name)
      },
      local.secret_settings,
      contains(local.cookieless_functions, name) ? local.cookieless_secret_settings : {},
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

  # The functions that publish events through shared/services/ingest.py (the SDK and webhook
  # endpoints, test events, /v1/streams): a cookieless source's ids are computed in each.
  cookieless_functions = ["ingest", "event_keys", "streams"]
  cookieless_secret_settings = {
    STREAMS_COOKIELESS_KEY = {
      secret  = google_secret_manager_secret.cookieless_key.secret_id
      version = google_secret_manager_secret_version.cookieless_key.version
    }
  }

  # Members by access, keyed by function name (keys known at plan time, for for_each).
  members_with = {
    for access in ["wire", "bigquery_read", "bigquery_write", "dead_letters", "warehouse"] : access => {
      for name, function in local.functions : name => local.function_members[name]
      if contains(function.access, access)
    }
  }
  # The publishers of each kind of run-time topic, by the service account emails
  # modules/function gives each function (computed from names, not read from the module, so the
  # functions' own environment can hold them).
  function_accounts = {
    for name in keys(local.functions) :
    name => "serviceAccount:${trimsuffix(substr("${var.name_prefix}-${replace(name, "_", "-")}", 0, 30), "-")}@${var.project_id}.iam.gserviceaccount.com"
  }
  topic_publishers = {
    for access in ["publish_sources", "publish_deliveries"] : access => sort([
      for name, function in local.functions : local.function_accounts[name] if contains(function.access, access)
    ])
  }
  function_members = merge(
    { for name, function in module.http_functions : name => function.member },
    { for name, function in module.pubsub_functions : name => function.member },
    { for name, function in module.internal_functions : name => function.member },
  )
  apis = var.enable_apis ? toset(concat([
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "billingbudgets.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "compute.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
    # The deduplication store's Memorystore instance and the Private Service Connect automation
    # that gives it an address in the VPC (dedup.tf), only when it is Valkey.
    ], local.valkey ? [
    "memorystore.googleapis.com",
    "networkconnectivity.googleapis.com",
    "serviceconsumermanagement.googleapis.com",
  ] : [])) : toset([])
}

resource "google_project_service" "apis" {
  for_each = local.apis

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

# An API answers some calls only a while after it is enabled (a newly enabled service's first
# calls can still be refused): everything below depends on this wait, not on the APIs alone.
resource "time_sleep" "apis_ready" {
  create_duration = var.enable_apis ? "60s" : "0s"

  depends_on = [google_project_service.apis]
}

# Pub/Sub's service agent exists only once Google creates it, which may be after the API is
# enabled: create it explicitly, so the grants to it (push token minting, dead-letter
# forwarding) never name an account that does not exist yet.
resource "google_project_service_identity" "pubsub" {
  provider = google-beta

  project = var.project_id
  service = "pubsub.googleapis.com"

  depends_on = [time_sleep.apis_ready]
}

# --- sources and builds ---------------------------------------------------------------------

resource "google_storage_bucket" "sources" {
  #checkov:skip=CKV_GCP_62:Holds only the source zips Terraform uploads and Cloud Build reads; Admin Activity audit logs record every write, and access logs would only add cost
  #checkov:skip=CKV_GCP_78:Objects are named by the content hash of their files and never overwritten, so versioning would keep nothing
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

  depends_on = [time_sleep.apis_ready]
}

# Cloud Build runs each function's build as this account (new projects' default build identity
# has no permissions).
resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-build"
  display_name = "Streams function builds"
  description  = "Identity of the Cloud Build runs that build the Streams functions."

  depends_on = [time_sleep.apis_ready]
}

# The build account holds the roles Google documents for a custom build service account, each
# on no more than it needs: writing build logs; pushing images to Streams' own repository (set as
# every function's docker_repository); reading the sources Cloud Functions stages in its own
# gcf-v2-* buckets, by an IAM condition on their names, and the zips in Streams' bucket.
resource "google_project_iam_member" "build" {
  for_each = toset(["roles/logging.logWriter"])

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.build.email}"
}

resource "google_project_iam_member" "build_reads_staged_sources" {
  project = var.project_id
  role    = "roles/storage.objectAdmin"
  member  = "serviceAccount:${google_service_account.build.email}"

  condition {
    title       = "Cloud Functions staging buckets"
    description = "Only the gcf-v2-sources and gcf-v2-uploads buckets Cloud Functions creates."
    expression  = "resource.name.startsWith(\"projects/_/buckets/gcf-v2-\")"
  }
}

resource "google_artifact_registry_repository" "functions" {
  project       = var.project_id
  location      = var.region
  repository_id = "${var.name_prefix}-functions"
  description   = "Images of the Streams functions, built by Cloud Build."
  format        = "DOCKER"
  labels        = var.labels

  # Each deploy pushes a new image: keep the latest few per function, not every one ever built.
  cleanup_policy_dry_run = false
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 5
    }
  }
  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s" # 30 days; the five most recent stay (above)
    }
  }

  depends_on = [time_sleep.apis_ready]
}

resource "google_artifact_registry_repository_iam_member" "build_pushes_images" {
  project    = var.project_id
  location   = google_artifact_registry_repository.functions.location
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${google_service_account.build.email}"
}

resource "google_storage_bucket_iam_member" "build_reads_sources" {
  bucket = google_storage_bucket.sources.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.build.email}"
}

# IAM grants take a minute or two to reach every Google service: a build started at once would
# be refused the roles just granted to its account.
resource "time_sleep" "build_iam_propagation" {
  create_duration = "90s"

  depends_on = [
    google_project_iam_member.build,
    google_project_iam_member.build_reads_staged_sources,
    google_storage_bucket_iam_member.build_reads_sources,
    google_artifact_registry_repository_iam_member.build_pushes_images,
  ]
}

resource "google_secret_manager_secret" "secrets" {
  for_each = var.secrets

  project   = var.project_id
  secret_id = "${var.name_prefix}-${each.key}"
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [time_sleep.apis_ready]
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

  depends_on = [time_sleep.apis_ready]
}

resource "google_secret_manager_secret_version" "message_signing_key" {
  secret                 = google_secret_manager_secret.message_signing_key.id
  secret_data_wo         = ephemeral.random_password.message_signing_key.result
  secret_data_wo_version = 1 # raise to rotate (docs/DEPLOY.md)
}

# Cookieless sources' daily salts are derived from this key in memory (shared/domain/
# cookieless.py): no salt is ever stored, and a new version (raise secret_data_wo_version)
# unlinks every past day's ids from every later one (docs/PRIVACY.md, Cookieless sources).
ephemeral "random_password" "cookieless_key" {
  length  = 64
  special = false
}

resource "google_secret_manager_secret" "cookieless_key" {
  project   = var.project_id
  secret_id = "${var.name_prefix}-cookieless-key"
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [time_sleep.apis_ready]
}

resource "google_secret_manager_secret_version" "cookieless_key" {
  secret                 = google_secret_manager_secret.cookieless_key.id
  secret_data_wo         = ephemeral.random_password.cookieless_key.result
  secret_data_wo_version = 1 # raise to rotate (docs/PRIVACY.md)
}

# deliver publishes to customers' topics (pubsub destinations) as this identity. It holds no
# role in this project, so no destination config can make deliver write to Streams' own topics;
# customers grant it roles/pubsub.publisher on their topic (output customer_publisher).
resource "google_service_account" "customer_publisher" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-customer-pub"
  display_name = "Streams customer-topic publisher"
  description  = "Identity deliver impersonates to publish to customers' own topics; no role on Streams' topics."

  depends_on = [time_sleep.apis_ready]
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

  depends_on = [time_sleep.apis_ready]
}

# --- data stores ----------------------------------------------------------------------------

module "datastores" {
  source = "./modules/datastores"

  project_id  = var.project_id
  name_prefix = var.name_prefix
  labels      = var.labels

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
  # The functions that sync warehouses (the scheduled `warehouse`, and `events` on demand).
  warehouse_syncers = local.members_with["warehouse"]

  recovery = var.recovery

  depends_on = [time_sleep.apis_ready]
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

  # Created by this apply (google_project_service_identity), so its grants never race Google.
  pubsub_agent           = "serviceAccount:${google_project_service_identity.pubsub.email}"
  wiring_members         = local.members_with["wire"]
  dead_letter_publishers = local.members_with["dead_letters"]

  depends_on = [time_sleep.apis_ready]
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
  docker_repository     = google_artifact_registry_repository.functions.id
  size                  = local.sizes[each.key]
  environment           = merge(local.common_environment, local.dedup_environment[each.key])
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
  direct_vpc = local.dedup_direct_vpc[each.key]

  depends_on = [time_sleep.build_iam_propagation]
}

module "internal_functions" {
  source   = "./modules/function"
  for_each = local.internal_functions

  project_id            = var.project_id
  region                = var.region
  name_prefix           = var.name_prefix
  name                  = each.key
  runtime               = var.runtime
  source_root           = local.source_root
  requirements          = local.requirements
  source_bucket         = google_storage_bucket.sources.name
  build_service_account = google_service_account.build.id
  docker_repository     = google_artifact_registry_repository.functions.id
  size                  = local.sizes[each.key]
  environment           = merge(local.common_environment, local.internal_environment)
  secret_environment    = local.secret_environment[each.key]
  project_roles         = local.project_roles[each.key]
  labels                = var.labels

  # Each is invoked only by the identities named here, with an ID token each: wiring by the
  # wiring clients (their members come from their modules, so the grants wait until those
  # accounts exist), warehouse by the Cloud Scheduler job's own account alone (warehouse.tf). A
  # private function missing here fails the plan. Ingress is all: Cloud Run counts a call from
  # another function as internal only when it leaves through a VPC, which Streams has no other
  # use for, so IAM alone keeps everyone else out.
  public           = false
  ingress_settings = "ALLOW_ALL"
  invokers = {
    wiring = {
      for name, function in local.http_functions : name => module.http_functions[name].member
      if contains(function.access, "wiring_client")
    }
    warehouse = { scheduler = "serviceAccount:${google_service_account.warehouse_scheduler.email}" }
  }[each.key]

  depends_on = [time_sleep.build_iam_propagation]
}

# The project number, for the console's forwarding with edge "direct" (console_environment).
data "google_project" "this" {
  count = local.direct ? 1 : 0

  project_id = var.project_id
  depends_on = [time_sleep.apis_ready]
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
  docker_repository     = google_artifact_registry_repository.functions.id
  size                  = local.sizes[each.key]
  asset_patterns        = concat(try(each.value.assets, []), each.key == "ingest" ? local.ingest_assets : [])
  environment           = merge(local.common_environment, local.wiring_environment, each.key == "ingest" ? local.ingest_environment : {}, each.key == "console" ? local.console_environment : {}, local.dedup_environment[each.key])
  secret_environment    = local.secret_environment[each.key]
  project_roles         = local.project_roles[each.key]
  labels                = var.labels

  # Behind the load balancer, reached only through it (the module's default ingress for a
  # public function, internal-and-load-balancer); with edge "direct" there is none, so their
  # run.app URLs are the way in and ingress is all. Either way callers authenticate to Streams
  # itself (write keys, Bearer tokens), so the invoker check is either granted to allUsers or
  # turned off (var.public_access, docs/DEPLOY.md).
  public           = true
  public_access    = var.public_access
  ingress_settings = local.direct ? "ALLOW_ALL" : null
  direct_vpc       = local.dedup_direct_vpc[each.key]

  depends_on = [time_sleep.build_iam_propagation]
}

# --- the edge: load balancer, certificate, Cloud Armor ------------------------------------

# Only with edge "load_balancer" (the default); "direct" has none of it (variables.tf, edge).
module "edge" {
  source = "./modules/edge"
  count  = local.direct ? 0 : 1

  project_id  = var.project_id
  region      = var.region
  name_prefix = var.name_prefix
  domains     = var.domains
  functions   = { for name, function in module.http_functions : name => function.name }
  ingest      = var.ingest_protection
  labels      = var.labels

  depends_on = [time_sleep.apis_ready]
}
