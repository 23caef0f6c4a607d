# A Cloud Armor expression cannot compare numbers (its language has string operations only), so
# a body-size limit matches the Content-Length header against a regular expression of every
# decimal number above the limit: longer numbers, or as long with a larger digit at the first
# place they differ. No provider: tests/unit/test_terraform_edge.py evaluates it offline with
# `terraform console` and checks it against numbers around the limit.

variable "max_bytes" {
  description = "Largest request body allowed, in bytes."
  type        = number

  validation {
    condition     = var.max_bytes >= 1 && floor(var.max_bytes) == var.max_bytes
    error_message = "max_bytes must be a whole number of bytes, at least 1."
  }
}

locals {
  digits = [for digit in regexall("[0-9]", format("%d", var.max_bytes)) : tonumber(digit)]
  length = length(local.digits)
  # As long as the limit: the same first i digits, a larger digit, then any digits.
  as_long_and_larger = [
    for i, digit in local.digits :
    "${join("", [for d in slice(local.digits, 0, i) : format("%d", d)])}[${digit + 1}-9][0-9]{${local.length - i - 1}}"
    if digit < 9
  ]
  pattern = "^0*(?:[1-9][0-9]{${local.length},}${join("", [for part in local.as_long_and_larger : "|${part}"])})$"
}

output "pattern" {
  description = "RE2 pattern matching the decimal numbers above max_bytes (leading zeros allowed)."
  value       = local.pattern
}
