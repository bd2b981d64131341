// A backup target in an S3 bucket (s3://bucket@region/path/), through the AWS SDK v3. Works with
// any S3-compatible store: the endpoint comes from the options or, as in Longhorn, from
// AWS_ENDPOINTS; addressing is path-style unless VIRTUAL_HOSTED_STYLE=true. Checksums are sent
// and checked only where S3 requires them (WHEN_REQUIRED), which S3-compatible stores accept.
// Credentials come from the options, a secret directory (one file per key, as a Kubernetes
// secret is mounted) or the environment; they are never logged, printed or put in errors.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { backupDeleteBatchMax } from '../lib/limits.ts';
import { BackupError, BackupErrorCode } from '../format/backup/backup-error.ts';
import { checkKey, type BackupTarget, type BackupTargetEntry } from './backup-target.ts';

export interface S3Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

export interface S3TargetOptions {
  readonly bucket: string;
  /** "" means us-east-1 (what most S3-compatible stores expect when they ignore regions). */
  readonly region: string;
  /** Key prefix inside the bucket, without leading or trailing "/". */
  readonly prefix: string;
  /** https://host:port of an S3-compatible store; AWS_ENDPOINTS when absent. */
  readonly endpoint?: string;
  readonly credentials?: S3Credentials;
  /** A directory holding AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINTS) files. */
  readonly secretDir?: string;
  readonly virtualHostedStyle?: boolean;
  /** SDK attempts per request (network errors, 5xx, throttling). */
  readonly maxAttempts?: number;
  readonly requestTimeoutMs?: number;
  readonly env?: Readonly<Record<string, string | undefined>>;
}

async function secretFile(dir: string, name: string): Promise<string | undefined> {
  try {
    return (await readFile(join(dir, name), 'utf8')).trim();
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return undefined;
    throw new BackupError(BackupErrorCode.invalidArgument, `Cannot read ${name} from the secret directory ${dir}`, { cause: error });
  }
}

function s3Error(what: string, error: unknown): BackupError {
  if (error instanceof BackupError) return error;
  if (error instanceof S3ServiceException) {
    const status = error.$metadata.httpStatusCode;
    if (status === 404 || error.name === 'NoSuchKey' || error.name === 'NotFound') {
      return new BackupError(BackupErrorCode.notFound, `${what}: not found`, { cause: error });
    }
    return new BackupError(BackupErrorCode.io, `${what}: S3 ${error.name} (HTTP ${status ?? '?'}): ${error.message}`, { cause: error });
  }
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return new BackupError(BackupErrorCode.io, `${what}: ${message}`, { cause: error });
}

export class S3Target implements BackupTarget {
  readonly url: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;

  private constructor(url: string, client: S3Client, options: S3TargetOptions) {
    this.url = url;
    this.client = client;
    this.bucket = options.bucket;
    this.prefix = options.prefix === '' ? '' : `${checkKey(options.prefix)}/`;
  }

  static async open(options: S3TargetOptions): Promise<S3Target> {
    const env = options.env ?? process.env;
    const fromDir = async (name: string): Promise<string | undefined> => (options.secretDir === undefined ? undefined : secretFile(options.secretDir, name));
    const accessKeyId = options.credentials?.accessKeyId ?? (await fromDir('AWS_ACCESS_KEY_ID')) ?? env['AWS_ACCESS_KEY_ID'];
    const secretAccessKey = options.credentials?.secretAccessKey ?? (await fromDir('AWS_SECRET_ACCESS_KEY')) ?? env['AWS_SECRET_ACCESS_KEY'];
    const endpoint = options.endpoint ?? (await fromDir('AWS_ENDPOINTS')) ?? env['AWS_ENDPOINTS'];
    if (accessKeyId === undefined || secretAccessKey === undefined || accessKeyId === '' || secretAccessKey === '') {
      throw new BackupError(BackupErrorCode.invalidArgument, `No S3 credentials for s3://${options.bucket}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or give a secret directory`);
    }
    if (endpoint !== undefined && endpoint !== '' && !/^https?:\/\/[^\s/]+\/?$/.test(endpoint)) {
      throw new BackupError(BackupErrorCode.invalidArgument, `Invalid S3 endpoint ${JSON.stringify(endpoint.slice(0, 200))}: expected http(s)://host[:port]`);
    }
    const virtualHosted = options.virtualHostedStyle ?? env['VIRTUAL_HOSTED_STYLE'] === 'true';
    const client = new S3Client({
      region: options.region === '' ? 'us-east-1' : options.region,
      ...(endpoint !== undefined && endpoint !== '' ? { endpoint } : {}),
      forcePathStyle: !virtualHosted,
      credentials: { accessKeyId, secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: options.maxAttempts ?? 3,
      requestHandler: { requestTimeout: options.requestTimeoutMs ?? 60_000, connectionTimeout: 10_000 },
    });
    const region = options.region === '' ? '' : `@${options.region}`;
    return new S3Target(`s3://${options.bucket}${region}/${options.prefix}${options.prefix === '' ? '' : '/'}`, client, options);
  }

  /** Keep credentials out of console.log and util.inspect of this object. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `S3Target(${this.url})`;
  }

  toJSON(): { url: string } {
    return { url: this.url };
  }

  private objectKey(key: string): string {
    return this.prefix + checkKey(key);
  }

  async *list(prefix: string): AsyncIterable<BackupTargetEntry> {
    checkKey(prefix, { allowEmpty: true });
    const full = prefix === '' ? this.prefix : `${this.prefix}${prefix}/`;
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: full, ...(token === undefined ? {} : { ContinuationToken: token }) }));
      } catch (error) {
        throw s3Error(`list ${prefix}`, error);
      }
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined || !object.Key.startsWith(this.prefix)) continue;
        yield { key: object.Key.slice(this.prefix.length), sizeBytes: object.Size ?? 0, modifiedMs: object.LastModified?.getTime() ?? 0 };
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  async read(key: string, maxBytes: number): Promise<Uint8Array> {
    const objectKey = this.objectKey(key);
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: objectKey }));
      const length = response.ContentLength;
      if (length === undefined || length > maxBytes || response.Body === undefined) {
        // Drop the body unread: it is over the limit or has no declared length to check first.
        response.Body?.transformToWebStream().cancel().catch(() => undefined);
        if (response.Body === undefined) throw new BackupError(BackupErrorCode.io, `read ${key}: S3 returned no body`);
        throw new BackupError(BackupErrorCode.tooLarge, `read ${key}: ${length ?? 'an unknown number of'} bytes is over the limit of ${maxBytes}`);
      }
      const data = await response.Body.transformToByteArray();
      if (data.length !== length) throw new BackupError(BackupErrorCode.io, `read ${key}: got ${data.length} bytes of ${length}`);
      return data;
    } catch (error) {
      throw s3Error(`read ${key}`, error);
    }
  }

  async stat(key: string): Promise<BackupTargetEntry | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      return { key, sizeBytes: head.ContentLength ?? 0, modifiedMs: head.LastModified?.getTime() ?? 0 };
    } catch (error) {
      const mapped = s3Error(`stat ${key}`, error);
      if (mapped.code === BackupErrorCode.notFound) return undefined;
      throw mapped;
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await this.stat(key)) !== undefined;
  }

  async write(key: string, data: Uint8Array): Promise<void> {
    try {
      // One PutObject (never multipart) for configs and blocks, as Longhorn writes them.
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key), Body: data, ContentLength: data.length }));
    } catch (error) {
      throw s3Error(`write ${key}`, error);
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    const objectKeys = keys.map((key) => this.objectKey(key));
    for (let at = 0; at < objectKeys.length; at += backupDeleteBatchMax) {
      const batch = objectKeys.slice(at, at + backupDeleteBatchMax);
      let response;
      try {
        response = await this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
      } catch (error) {
        throw s3Error(`delete ${batch.length} objects`, error);
      }
      const failed = (response.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length > 0) {
        const first = failed[0]!;
        throw new BackupError(BackupErrorCode.io, `delete: ${failed.length} of ${batch.length} objects failed, first ${first.Key ?? '?'}: ${first.Code ?? '?'} ${first.Message ?? ''}`);
      }
    }
  }

  async deletePrefix(prefix: string): Promise<number> {
    const keys: string[] = [];
    for await (const entry of this.list(prefix)) keys.push(entry.key);
    await this.delete(keys);
    return keys.length;
  }

  close(): Promise<void> {
    this.client.destroy();
    return Promise.resolve();
  }
}
