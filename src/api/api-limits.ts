// The REST API's maxima. They belong in src/lib/limits.ts; they live here until that file is free
// to edit (another helper had uncommitted changes in it), and move there unchanged.
import { assert } from '../lib/assert.ts';
import { resourceSizeMaxBytes } from '../lib/limits.ts';

/** Largest request body accepted (a resource is at most 1 MiB; a body never needs more). */
export const apiBodySizeMaxBytes = resourceSizeMaxBytes;
/** Items one list response carries; more are cut off and the response says `truncated`. */
export const apiListItemsMax = 10_000;
/** Recent resource changes kept for `GET /v1/events`. */
export const apiEventHistoryMax = 1000;
/** Event-stream (SSE) clients served at once; more get 503. */
export const apiStreamClientsMax = 100;
/** Events queued for one slow stream client before it is cut off (it reconnects and refetches). */
export const apiStreamBacklogMax = 1000;
/** Keep-alive comment on idle event streams, so proxies do not close them. */
export const apiStreamPingIntervalMs = 15_000;
/** Longest URL path parameter (resource names are at most 63 characters). */
export const apiParamLengthMax = 256;
/** Time to receive a whole request (headers and body): slow clients are cut off. */
export const apiRequestTimeoutMs = 30_000;
/** Retries of a read-modify-write when another writer got there first. */
export const apiConflictRetriesMax = 8;
/** Longest bearer token accepted in a header (ours are 64 hex characters). */
export const apiTokenLengthMax = 512;

assert(apiStreamBacklogMax >= 1, 'a stream client must be able to hold one event');
assert(apiBodySizeMaxBytes >= 64 * 1024, 'a body must hold any action input');
