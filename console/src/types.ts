// The shapes the console reads, as docs/openapi.json describes them.

export type CallType = 'track' | 'identify' | 'page' | 'screen' | 'group' | 'alias';
export const CALL_TYPES: CallType[] = ['track', 'identify', 'page', 'screen', 'group', 'alias'];

export interface EventSource {
  id: string;
  workspace_id: string;
  name: string;
  key: string;
  status: 'active' | 'revoked';
  pubsub_topic: string;
  last_used_at: string | null;
  created_by: string;
  created_at: string;
  updated_at: string;
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

export interface VolumeRow {
  event_type: string;
  event_name: string | null;
  hour_bucket: string;
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
  message_id: string;
  rule_id: string;
  destination_id: string;
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
  reasons: { contract_id: string; type: string; field: string; message: string | null }[];
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
}
