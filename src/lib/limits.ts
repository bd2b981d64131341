// Every maximum in Shorthorn lives here, with the relationships between them asserted when the
// module loads (TigerBeetle's constants.zig). Decoders check lengths against these *before*
// allocating.
import { assert } from './assert.ts';

/** The replica store's block size: the unit of the layer index and of every data write. */
export const blockSizeBytes = 4096;
/** The smallest I/O unit a frontend accepts (NBD minimum block size). */
export const sectorSizeBytes = 512;
/** Largest single read/write/trim request accepted from any client. */
export const requestSizeMaxBytes = 32 * 1024 * 1024;
/** Largest volume we design for (DESIGN §5): 64 TiB. */
export const volumeSizeMaxBytes = 64 * 1024 ** 4;
/** Snapshots in one chain (Longhorn caps at 250; we promise at least 1000). */
export const snapshotCountMax = 1024;
/** Replicas per volume. */
export const replicaCountMax = 10;
/** Replica protocol: largest frame (header + payload) accepted on the wire. */
export const replicaFrameSizeMaxBytes = requestSizeMaxBytes + 64 * 1024;
/** Replica protocol: requests in flight on one connection. */
export const replicaInflightMax = 256;
/** Connections one replica server accepts at once. */
export const replicaConnectionsMax = 64;
/** Chunk size of per-chunk checksums of sealed layers (rebuild and scrub unit). */
export const checksumChunkSizeBytes = 2 * 1024 * 1024;
/** Longest name of a volume, snapshot or other resource. */
export const nameLengthMax = 63;
/** Largest JSON metadata file a replica reads (chain, labels of 1000+ snapshots). */
export const metadataSizeMaxBytes = 16 * 1024 * 1024;
/** Labels on one snapshot, and the longest key/value. */
export const labelCountMax = 64;
export const labelLengthMax = 256;
/** Test-only fault-injecting disk layer: rules and crash points in one config. */
export const faultRulesMax = 64;
/** Test-only fault layer with lose-unsynced: unsynced bytes one process may hold in memory. */
export const faultUnsyncedBytesMax = 512 * 1024 * 1024;
/** NBD: connections to one export at once. */
export const nbdConnectionsMax = 64;
/** NBD: requests in flight on one connection. */
export const nbdInflightMax = 128;
/** NBD: longest option payload in the handshake. */
export const nbdOptionSizeMaxBytes = 64 * 1024;
/** NBD: read and write payload bytes in flight on one connection before it stops reading (one request always passes). */
export const nbdInflightBytesMax = 2 * requestSizeMaxBytes;
/** NBD: descriptors in one block-status reply (the protocol lets a server answer a shorter range). */
export const nbdBlockStatusDescriptorsMax = 4096;
/** NBD: a client that has not finished the handshake by then is disconnected. */
export const nbdHandshakeTimeoutMs = 30_000;
/** Default per-request timeout between engine and replica. */
export const replicaRequestTimeoutMs = 8000;
/**
 * The slowest a replica may move a request's data before the engine calls it dead: a read or
 * write of N bytes gets the request timeout plus N at this rate (32 MiB: +8 s). A 16 MiB read on a
 * loaded machine once outlived a flat 2 s timeout and every healthy replica was dropped (issue #9).
 */
export const replicaRequestFloorBytesPerSecond = 4 * 1024 * 1024;
/** Replica client: deadline of requests whose work grows with the data (checksums of a whole layer,
 * installing rebuilt layers, purge). */
export const slowRequestTimeoutMs = 10 * 60_000;
/**
 * Rebuild: bytes one transfer request carries, and transfer requests in flight at once. Measured
 * with the same 16 MiB in flight (bench/rebuild.ts, 256 MiB, interleaved at load average ~19):
 * 1 MiB x 16 copied at 27-45 MiB/s where 4 MiB x 8 did 20-28 and 16 MiB x 8 did 8.
 */
export const rebuildPieceBytes = 1024 * 1024;
export const rebuildInflightMax = 16;
/** Replica protocol: largest JSON payload of a control request (snapshot labels, members). */
export const replicaControlRequestSizeMaxBytes = 64 * 1024;
/** Replica protocol: largest JSON payload of a control reply (chain info of 1000+ snapshots). */
export const replicaControlReplySizeMaxBytes = metadataSizeMaxBytes;
/** Replica protocol: longest error message carried by an error reply (longer ones are cut). */
export const replicaErrorMessageMaxBytes = 4096;
/** Replica protocol: extents in one layer-extents reply; the caller asks again from where it ended. */
export const replicaExtentsPerReplyMax = 65536;
/** Replica protocol: checksum chunks one checksums request may cover. */
export const replicaChecksumChunksPerRequestMax = 4096;
/** Replica protocol: bytes of requests and replies one connection holds in flight (reads count
 * their length); the server stops reading the socket above it. */
export const replicaInflightBytesMax = 128 * 1024 * 1024;
/** Replica client: requests waiting for an in-flight slot before new ones are refused. */
export const replicaClientQueueMax = 4096;
/** Longest member id (replica address) in a membership record. */
export const memberIdLengthMax = 256;

/** Store: largest serialised resource accepted (etcd refuses requests over 1.5 MiB by default). */
export const resourceSizeMaxBytes = 1024 * 1024;
/** Store: longest kind name (kinds are path segments of etcd keys). */
export const kindLengthMax = 63;
/** Store: longest label selector string accepted from a caller. */
export const labelSelectorLengthMax = 4096;
/** Store: labels and annotations on one resource, each. */
export const resourceLabelCountMax = 128;
/** Embedded store: events kept in the log so watchers can resume; older revisions answer 'gone'. */
export const storeEventRetentionCount = 10_000;
/** Store: events buffered for one slow watcher before it is cut off with 'gone' (it relists). */
export const watchBacklogMax = 10_000;
/** Store leases: shortest and longest time to live (etcd rounds up to whole seconds, min ~2 s). */
export const leaseTtlMinMs = 1000;
export const leaseTtlMaxMs = 10 * 60_000;
/** Controller runtime: exponential retry back-off per key (Longhorn: 5 ms to 1000 s). */
export const reconcileBackoffBaseMs = 5;
export const reconcileBackoffMaxMs = 5 * 60_000;
/** Controller runtime: distinct keys waiting in one work queue. */
export const workQueueLengthMax = 100_000;
/** Controller runtime: actions one reconcile may return. */
export const reconcileActionsMax = 1000;

/** Resources: any byte count of a disk or a store (exact as a JS number). */
export const byteCountMax = Number.MAX_SAFE_INTEGER;
/** Resources: volume names, shorter than other names so derived names (`<vol>-r-<8 hex>`) fit. */
export const volumeNameLengthMax = 40;
/** Resources: disks on one node. */
export const diskCountMax = 64;
/** Resources: tags on a node or a disk, and entries in a node or disk selector; longest tag. */
export const tagCountMax = 32;
export const tagLengthMax = 63;
/** Resources: conditions on one object. */
export const conditionCountMax = 32;
/** Resources: longest free-text field (messages, errors, descriptions). */
export const freeTextLengthMax = 4096;
/** Resources: longest URL (backup target, backup, backing image source). */
export const urlLengthMax = 2048;
/** Resources: longest filesystem path (disk paths). */
export const pathLengthMax = 4096;
/** Node agent: orphaned replica directories reported per disk (the rest are counted in the log). */
export const orphanReportMax = 256;
/** Node agent: instances (engine and replica processes) one node runs. */
export const nodeInstancesMax = 1000;
/** Settings: longest value of one setting. */
export const settingValueLengthMax = 4096;

// REST API (src/api)
/** Largest request body accepted (a resource is at most 1 MiB; a body never needs more). */
export const apiBodySizeMaxBytes = resourceSizeMaxBytes;
/**
 * HTTP servers (the API, an engine's control API): bytes of an over-limit body read and dropped
 * before the 413 goes out; a longer body has its connection cut instead.
 */
export const requestBodyDrainMaxBytes = 16 * 1024 * 1024;
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
/**
 * A /metrics scrape asks each running engine for its I/O counters: this many at once, each given
 * this long. A slow or dead engine costs one timeout, and its volume's I/O series are left out
 * (with shorthorn_volume_io_scrape_error 1) rather than holding up every other series.
 */
export const metricsEngineQueriesAtOnce = 16;
export const metricsEngineQueryTimeoutMs = 1000;
/** Longest bearer token accepted in a header (ours are 64 hex characters). */
export const apiTokenLengthMax = 512;
/** Largest web UI file (ui/dist) the API serves; the bundles are far smaller. */
export const uiStaticFileMaxBytes = 8 * 1024 * 1024;

/** Replica store: open layer files one replica keeps cached (a whole 1000-snapshot chain fits,
 *  so deep chains read at full speed; the replica process needs RLIMIT_NOFILE above this). */
export const replicaOpenLayerFilesMax = 1100;
/** Replica store: ranges written since the last flush before a write forces a flush. */
export const journalPendingEntriesMax = 8192;
/** Replica store: a head journal this long is rewritten compactly once it is 4× its compact size. */
export const journalCompactBytes = 4 * 1024 * 1024;
/** Replica store: ranges in one head-journal record (16 bytes each). */
export const journalRecordEntriesMax = 65536;
/** Replica store: ranges in one sealed layer's extent file, checked before it is read in. */
export const layerExtentsMax = 64 * 1024 * 1024;
/** Replica store: chunks one checksums() call may cover. */
export const checksumChunksPerRequestMax = 65536;

/** Backup store: the block size of a backup when its parameters name none (Longhorn's default). */
export const backupBlockSizeDefaultBytes = 2 * 1024 * 1024;
/** Backup store: the largest block size accepted from a backup's `backup-block-size` parameter. */
export const backupBlockSizeMaxBytes = 64 * 1024 * 1024;
/** Backup store: largest object read whole (a compressed block may be a little larger than the block). */
export const backupObjectSizeMaxBytes = backupBlockSizeMaxBytes + 1024 * 1024;
/** Backup store: largest backup_<name>.cfg read (its block list: ~90 bytes a block, ~2.9M blocks). */
export const backupConfigSizeMaxBytes = 256 * 1024 * 1024;
/** Backup store: largest volume.cfg and lock file read. */
export const backupVolumeConfigSizeMaxBytes = 1024 * 1024;
export const backupLockSizeMaxBytes = 64 * 1024;
/** Backup store: longest object key (S3's limit) and longest volume/backup/lock name. */
export const backupKeyLengthMax = 1024;
export const backupNameLengthMax = 200;
/** Backup store: labels and parameters on one backup or backup volume, and the longest key/value. */
export const backupLabelCountMax = 1024;
export const backupLabelLengthMax = 4096;
/** Backup store: blocks read, uploaded, downloaded or checked at once by one operation. */
export const backupConcurrencyMax = 64;
/** Backup store: keys in one batched delete (S3 DeleteObjects accepts 1000). */
export const backupDeleteBatchMax = 1000;
/** Engine backups: resolved extents of one snapshot a backup reader holds (~100 bytes each in memory). */
export const snapshotReaderExtentsMax = 1024 * 1024;
/** Engine backups: backup jobs the engine remembers (finished ones are dropped oldest first). */
export const backupJobsMax = 64;

assert(Number.isInteger(Math.log2(blockSizeBytes)), 'block size must be a power of two');
assert(blockSizeBytes % sectorSizeBytes === 0, 'block size must be a multiple of the sector size');
assert(requestSizeMaxBytes % blockSizeBytes === 0, 'request size must be whole blocks');
assert(replicaFrameSizeMaxBytes > requestSizeMaxBytes, 'a frame must hold a whole request');
assert(checksumChunkSizeBytes % blockSizeBytes === 0, 'checksum chunks must be whole blocks');
assert(volumeSizeMaxBytes <= Number.MAX_SAFE_INTEGER, 'volume offsets must be exact numbers');
assert(snapshotCountMax >= 1000, 'we promise at least 1000 snapshots');
assert(leaseTtlMinMs < leaseTtlMaxMs, 'lease TTL bounds must be ordered');
assert(reconcileBackoffBaseMs < reconcileBackoffMaxMs, 'back-off bounds must be ordered');
assert(watchBacklogMax <= storeEventRetentionCount, 'a cut-off watcher must be able to resume or relist');
assert(volumeNameLengthMax + 11 <= nameLengthMax, 'replica names <vol>-r-<8 hex> must be valid names');
assert(volumeSizeMaxBytes <= byteCountMax, 'a volume size is a byte count');
assert(replicaControlReplySizeMaxBytes < replicaFrameSizeMaxBytes, 'a frame must hold a control reply');
assert(replicaControlRequestSizeMaxBytes < replicaFrameSizeMaxBytes, 'a frame must hold a control request');
assert(replicaExtentsPerReplyMax * 64 <= replicaControlReplySizeMaxBytes, 'an extents reply must fit a control reply');
assert(replicaInflightBytesMax >= 2 * replicaFrameSizeMaxBytes, 'a connection must hold two largest frames in flight');
assert(
  journalPendingEntriesMax + 3 * replicaInflightMax * replicaConnectionsMax <= journalRecordEntriesMax,
  'every write in flight must fit one journal record after the pending list fills',
);
assert(replicaOpenLayerFilesMax > snapshotCountMax, 'a whole chain of layer files stays open');
assert(backupBlockSizeDefaultBytes <= backupBlockSizeMaxBytes, 'the default backup block size must be allowed');
assert(backupBlockSizeMaxBytes % blockSizeBytes === 0, 'backup blocks must be whole store blocks');
assert(nbdInflightBytesMax >= requestSizeMaxBytes, 'an NBD connection must fit one largest request in flight');
assert(apiStreamBacklogMax >= 1, 'a stream client must be able to hold one event');
assert(apiBodySizeMaxBytes >= 64 * 1024, 'a body must hold any action input');

/**
 * libuv thread-pool size for replica and engine processes (set in the environment of the child by
 * whoever starts it: the node agent, the test harness). On a 2-core host, raw 4 KiB page-cache
 * reads ran at 105k/s with 4 threads and 47k/s with 16, and short fio runs through engine and
 * replica gave 16.6–18.0k vs 11.6–13.4k reads/s; the full fio benchmark showed no difference
 * (bench/results). Fewer threads contend less for the cores; a blocked fdatasync leaves three.
 */
export const dataProcessThreadPoolSize = 4;

// Recurring jobs (src/control/recurring/, docs/recurring-jobs.md).
/** A job whose last slot is this far ahead of the wall clock restarts its schedule from now. */
export const recurringJobClockBehindResetMs = 24 * 60 * 60_000;
/** Missed slots counted (for the status message) when they fold into one catch-up run. */
export const recurringJobCollapsedSlotsCountMax = 1000;
/** Volumes whose outcome one run lists in the job's status. */
export const recurringJobVolumeReportMax = 256;
/** A run waits this long for a snapshot to be ready or a backup to finish, per volume. */
export const recurringJobTaskTimeoutMs = 10 * 60_000;
/** The scheduler looks again at least this often, so a wall-clock step is noticed. */
export const recurringJobRecheckMs = 10_000;
