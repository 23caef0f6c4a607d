// The shapes the console reads, as docs/openapi.json describes them.

export type CallType = 'track' | 'identify' | 'page' | 'screen' | 'group' | 'alias';
export const CALL_TYPES: CallType[] = ['track', 'identify', 'page', 'screen', 'group', 'alias'];

export type SourceType = 'javascript' | 'server' | 'mobile' | 'webhook';

export interface EventSource {
  id: string;
  workspace_id: string;
  name: string;
  type: SourceType;
  key: string;
  status: 'active' | 'revoked';
  pubsub_topic: string;
  last_used_at: string | null;
  created_by: string;
  created_at: string;
  updated_at: string;
}

export type IpPolicy = 'keep' | 'truncate' | 'remove';
export type BotPolicy = 'keep' | 'store_only' | 'drop';

/** GET/PUT /event-keys/{id}/privacy (a PUT sends all three). */
export interface SourcePrivacy {
  source_id: string;
  ip_policy: IpPolicy;
  bot_policy: BotPolicy;
  cookieless: boolean;
  updated_at: string;
}

/** GET/PUT /privacy: the workspace's PII rules and consent requirement. */
export interface WorkspacePrivacy {
  pii_rules: { path: string; action: 'hash' | 'drop' }[];
  hashing: string;
  consent_required: boolean;
  created_at: string | null;
  updated_at: string | null;
}

/** The canonical event (docs/EVENTS.md), as the live stream sends it. */
export interface CanonicalEvent {
  messageId: string;
  type: CallType;
  event: string | null;
  name: string | null;
  userId: string | null;
  anonymousId: string | null;
  properties: Record<string, unknown>;
  traits: Record<string, unknown>;
  timestamp: string;
  receivedAt: string;
  sourceId: string;
  workspaceId: string;
  [key: string]: unknown;
}

export interface TraceStage {
  stage: string;
  status: string;
  at: string | null;
  reason: string | null;
  rule_id?: string | null;
  destination_id?: string | null;
  delivery_id?: string | null;
}

export interface EventTrace {
  message_id: string;
  workspace_id: string;
  source_id: string | null;
  event_type: string | null;
  state: 'processing' | 'processed';
  stages: TraceStage[];
}

/** A row of GET /events/volume: per hour (`hour_bucket`), or per day (`day_bucket`, with
 * granularity=day). */
export interface VolumeRow {
  event_type: string;
  event_name: string | null;
  hour_bucket?: string;
  day_bucket?: string;
  event_count: number;
}

export interface Contract {
  id: string;
  name: string;
  event_type: string;
  event_name: string;
  description: string | null;
  schema_definition: Record<string, unknown>;
  enforcement_mode: 'allow' | 'warn' | 'block';
  undeclared_fields: 'allow' | 'warn' | 'block';
  status: 'active' | 'archived';
  version: number;
  created_at: string;
  updated_at: string;
}

export interface Violation {
  id: string;
  contract_id: string;
  contract_version: number | null;
  message_id: string;
  event_type: string | null;
  event_name: string | null;
  source_id: string | null;
  field: string;
  type: string;
  message: string | null;
  expected: string | null;
  actual: string | null;
  action: string;
  created_at: string;
}

export interface ViolationSummary {
  violations: number;
  events: number;
  blocked_events: number;
  by_type: Record<string, number>;
  by_field: Record<string, number>;
  by_field_and_type: { field: string; type: string; count: number }[];
  shadow: { would_block: number; would_block_undeclared: number };
  scanned: number;
  truncated: boolean;
}

export interface ViolationPage {
  data: Violation[];
  next_cursor: string | null;
  summary: ViolationSummary | null;
}

export interface Transformation {
  id: string;
  name: string;
  description: string;
  source_code: string;
  test_input: Record<string, unknown> | null;
  test_output: unknown;
  status: 'active' | 'draft' | 'error';
  version: number;
  compile_error: string | null;
  created_at: string;
  updated_at: string;
}

export interface Difference {
  path: string;
  expected?: unknown;
  actual?: unknown;
  before?: unknown;
  after?: unknown;
  change: 'added' | 'removed' | 'changed';
}

export interface RecentRun {
  message_id: string | null;
  before: Record<string, unknown>;
  after: unknown;
  dropped: boolean;
  changes: Difference[];
  logs: string[];
  duration_ms: number;
  error: string | null;
  error_line: number | null;
}

export interface TestResult {
  mode: 'sample' | 'recent';
  passed: boolean | null;
  output?: unknown;
  expected?: unknown;
  dropped?: boolean;
  diff?: Difference[];
  logs?: string[];
  duration_ms?: number;
  error?: string | null;
  error_line?: number | null;
  warnings?: string[];
  events?: RecentRun[] | null;
  /** recent: events not run because the request's CPU time was used up. */
  skipped?: number;
}

export interface Destination {
  id: string;
  name: string;
  type: string;
  status: string;
  createdAt: string;
}

export interface DeadLetter {
  id: string;
  /** delivery: a delivery to a destination; event: an event that never reached routing. */
  kind?: 'delivery' | 'event';
  message_id: string;
  source_id?: string | null;
  rule_id: string | null;
  destination_id: string | null;
  destination_type: string | null;
  reason_code: string;
  reason: string;
  attempts: number | null;
  last_http_status: number | null;
  status: 'dead_lettered' | 'replayed';
  times_dead_lettered: number;
  replay_count: number;
  created_at: string;
  updated_at: string;
  replayed_at: string | null;
}

export interface QuarantinedEvent {
  id: string;
  message_id: string;
  source_id: string | null;
  event_type: string | null;
  event_name: string | null;
  received_at: string | null;
  contract_ids: string[];
  reasons: {
    contract_id: string;
    contract_version: number | null;
    type: string;
    field: string;
    message: string | null;
    expected: string | null;
    actual: string | null;
  }[];
  status: 'quarantined' | 'replayed';
  times_quarantined: number;
  replay_count: number;
  quarantined_at: string;
  replayed_at: string | null;
  event: Record<string, unknown>;
}

export interface ReplayResult {
  dry_run: boolean;
  matched: number;
  replayed: string[];
  skipped: { id: string; reason: string }[];
  /** The messageId of each record id of `replayed` and `skipped`. */
  message_ids: Record<string, string>;
}

// Destinations and forwarding rules (pages/Destinations.tsx, pages/ForwardingRules.tsx).

/** A destination as /api/v1 answers it: config without its secrets, and which secrets are set. */
export interface DestinationRecord extends Destination {
  config: Record<string, unknown>;
  secrets_set: string[];
  /** The consent categories an event must have all granted to be delivered here. */
  consent_categories: string[];
}

/** A row of GET /events/consent-volume: events held back from a destination for consent, per hour. */
export interface ConsentVolumeRow {
  destination_id: string;
  outcome: 'consent_denied';
  hour_bucket: string;
  event_count: number;
}

/** A JSON Schema, as far as the destination forms read one. */
export interface JsonSchema {
  type?: string;
  title?: string;
  description?: string;
  enum?: unknown[];
  default?: unknown;
  format?: string;
  writeOnly?: boolean;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  anyOf?: JsonSchema[];
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  required?: string[];
}

export interface DestinationTypeSchema {
  type: string;
  description: string;
  docs_url: string;
  config_schema: JsonSchema;
  secret_fields: string[];
  event_types: string[];
  batching: { max_parts: number; max_bytes: number | null };
  rate_limit: { requests: number; per_seconds: number } | null;
  supports_deletion: boolean;
}

export interface DestinationTestResult {
  outcome: 'delivered' | 'retry' | 'failed' | 'skipped' | 'rejected';
  http_status: number | null;
  detail: string;
  duration_ms: number | null;
  message_id: string;
  event: Record<string, unknown>;
}

export interface DeliveryRecord {
  delivery_id: string;
  message_id: string;
  rule_id: string | null;
  status: 'delivered' | 'skipped' | 'dropped' | 'retrying' | 'dead_lettered';
  attempts: number;
  last_detail: string | null;
  last_http_status: number | null;
  created_at: string;
  updated_at: string;
  delivered_at: string | null;
}

export interface ForwardingRule {
  id: string;
  workspace_id: string;
  name: string;
  destination_id: string;
  event_types: CallType[];
  event_names: string[];
  transformation_id: string | null;
  enabled: boolean;
  created_at: string;
  updated_at: string;
}

// Contracts page (issue 24): the editor's schema check, the events-seen proposal, list counts.
export interface SchemaCheckResult {
  valid: true;
  form: 'compact' | 'json_schema';
  json_schema: Record<string, unknown>;
}

export interface ProposedField {
  field: string;
  types: string[];
  seen: number;
  required: boolean;
}

export interface SchemaProposal {
  event_type: string;
  event_name: string;
  target: 'properties' | 'traits';
  sampled: number;
  since: string;
  until: string;
  newest_received_at: string | null;
  schema_definition: Record<string, unknown>;
  fields: ProposedField[];
}

export interface ViolationCount {
  events: number;
  violations: number;
  blocked_events: number;
}

export interface ViolationCounts {
  since: string;
  until: string;
  complete_since: string;
  truncated: boolean;
  scanned: number;
  counts: Record<string, ViolationCount>;
}

/** The warehouse's column types (BigQuery's). */
export type WarehouseColumnType = 'STRING' | 'TIMESTAMP' | 'INT64' | 'FLOAT64' | 'BOOL' | 'JSON';

/** PUT /warehouse/settings (the whole settings; an omitted cap takes its default). */
export interface WarehouseSettings {
  max_event_tables: number;
  max_columns: number;
  /** null: unlimited. */
  retention_days: number | null;
}

export interface WarehouseColumn {
  name: string;
  key: string;
  type: WarehouseColumnType;
  typed_by: 'contract' | 'data';
  seen_types: WarehouseColumnType[];
  conflict: boolean;
}

export interface WarehouseTable {
  name: string;
  kind: 'tracks' | 'event' | 'pages' | 'screens' | 'identifies' | 'groups' | 'aliases' | 'users';
  event_text: string | null;
  contract_id: string | null;
  columns: WarehouseColumn[];
  /** Keys past the column cap or unfit for a column name: in the JSON column only. */
  folded: string[];
}

export interface WarehouseConflict {
  table: string;
  column: string;
  key: string;
  type: WarehouseColumnType;
  typed_by: 'contract' | 'data';
  seen_types: WarehouseColumnType[];
  /** Where the values the column does not hold are (`properties` in backquotes). */
  values_not_fitting: string;
}

/** GET /warehouse, and the answer of PUT /warehouse/settings. */
export interface Warehouse {
  dataset: string;
  settings: WarehouseSettings;
  synced_at: string | null;
  in_step: boolean;
  tables: WarehouseTable[];
  /** Track events past the table cap: only in `tracks`. */
  folded_events: string[];
  conflicts: WarehouseConflict[];
}

/** POST /warehouse/sync. */
export interface WarehouseSync extends Warehouse {
  events_observed: number;
  views_rewritten: string[];
  views_dropped: string[];
  events_expired: number;
}
