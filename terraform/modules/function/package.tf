# The function's source zip is built before planning, by `make package` (terraform/build.py):
# main.py at its root, shared/, the lock file as requirements.txt and the built files the
# function serves, byte for byte, binary ones included. This file checks that zip and names it.
# It uses no provider, so tests/unit/test_build.py plans it with Terraform alone.

locals {
  package_dir   = "${var.source_root}/terraform/.build/functions"
  source_zip    = "${local.package_dir}/${var.name}.zip"
  manifest_file = "${local.package_dir}/${var.name}.json"

  # Repository path => sha256 of every file in the zip, written beside it by the same build.
  packaged_files = try(jsondecode(file(local.manifest_file)).files, null)
  packaged       = fileexists(local.source_zip) && local.packaged_files != null
  # Files edited (or removed) since the zip was built: deploying it would ship the old code.
  changed_files = local.packaged ? sort([
    for path, digest in local.packaged_files : path
    if try(filesha256("${var.source_root}/${path}"), "") != digest
  ]) : []

  # Built files the function serves (asset_patterns): each pattern must match, and the zip must
  # hold every file it matches.
  unbuilt_patterns = [for pattern in var.asset_patterns : pattern if length(fileset(var.source_root, pattern)) == 0]
  asset_files      = sort(distinct(flatten([for pattern in var.asset_patterns : fileset(var.source_root, pattern)])))
  unpackaged_files = local.packaged ? [for path in local.asset_files : path if !contains(keys(local.packaged_files), path)] : []

  # The manifest lists every file's content hash, so its own hash names the object: a code change
  # gives a new object name (a new build and revision), no change redeploys nothing, and the
  # zip's bytes (compression may differ between machines) play no part.
  source_hash = local.packaged ? substr(filesha256(local.manifest_file), 0, 16) : "unpackaged"
}

# Holds the checks: a failed precondition stops the plan before anything is uploaded.
resource "terraform_data" "source_package" {
  input = local.source_hash

  lifecycle {
    precondition {
      condition     = length(local.unbuilt_patterns) == 0
      error_message = "${join(", ", local.unbuilt_patterns)} matches no file: the ${var.name} function serves built files. Run `make console` (console/dist) or `make collect` (collect/dist), then `make package`, from the repository root."
    }
    precondition {
      condition     = local.packaged
      error_message = "${local.source_zip} or its manifest is missing: run `make package` from the repository root before terraform plan (it builds the console and the SDK bundles first)."
    }
    precondition {
      condition     = length(local.changed_files) == 0
      error_message = "The ${var.name} zip is stale, these files changed since it was built: ${join(", ", slice(local.changed_files, 0, min(5, length(local.changed_files))))}. Run `make package`."
    }
    precondition {
      condition     = length(local.unpackaged_files) == 0
      error_message = "The ${var.name} zip lacks built files it serves (${join(", ", slice(local.unpackaged_files, 0, min(5, length(local.unpackaged_files))))}): run `make package`."
    }
    precondition {
      condition     = !local.packaged || try(local.packaged_files["terraform/requirements.txt"], "") == sha256(var.requirements)
      error_message = "The ${var.name} zip carries another requirements.txt than terraform/requirements.txt: run `make package`."
    }
  }
}
