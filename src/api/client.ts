// The API's typed client, used by the CLI (and later the CSI driver and tests): one method per
// route and action, errors as ApiClientError carrying the server's code and HTTP status.
import { ShorthornError } from '../lib/errors.ts';
import type { ResourceProblem } from '../control/resources/resource-problem.ts';
import type { ApiErrorBody } from './api-error.ts';
import type { CollectionView, ResourceView, VolumeActionName } from './resource-view.ts';
import type { SettingView } from './setting-routes.ts';

/** The server's error codes, plus `unreachable` (no answer) and `bad_response` (not our API). */
export class ApiClientError extends ShorthornError<string> {
  /** HTTP status; 0 when the server never answered. */
  readonly status: number;
  readonly problems: readonly ResourceProblem[];
  constructor(code: string, message: string, options: { status: number; problems?: readonly ResourceProblem[]; cause?: unknown }) {
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = options.status;
    this.problems = options.problems ?? [];
  }
}

export const defaultApiUrl = 'http://127.0.0.1:9500';

export interface ClientOptions {
  readonly baseUrl: string;
  readonly token: string;
  readonly timeoutMs?: number;
}

export type VolumeCreateInput = { readonly name: string; readonly size: number | string } & Readonly<Record<string, unknown>>;

export class ShorthornClient {
  private readonly baseUrl: string;
  private readonly token: string;
  private readonly timeoutMs: number;

  constructor(options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.token = options.token;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      const why = error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error);
      throw new ApiClientError('unreachable', `cannot reach the Shorthorn API at ${this.baseUrl}: ${why}`, { status: 0, cause: error });
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch (error) {
      throw new ApiClientError('bad_response', `${method} ${path}: HTTP ${response.status}, not JSON: ${text.slice(0, 200)}`, { status: response.status, cause: error });
    }
    if (!response.ok) {
      const failure = parsed as Partial<ApiErrorBody> | undefined;
      throw new ApiClientError(failure?.code ?? 'bad_response', failure?.message ?? `${method} ${path}: HTTP ${response.status}`, {
        status: response.status,
        problems: failure?.problems ?? [],
      });
    }
    return parsed as T;
  }

  listVolumes(): Promise<CollectionView> {
    return this.request('GET', '/v1/volumes');
  }
  getVolume(name: string): Promise<ResourceView> {
    return this.request('GET', `/v1/volumes/${encodeURIComponent(name)}`);
  }
  createVolume(input: VolumeCreateInput): Promise<ResourceView> {
    return this.request('POST', '/v1/volumes', input);
  }
  deleteVolume(name: string): Promise<ResourceView> {
    return this.request('DELETE', `/v1/volumes/${encodeURIComponent(name)}`);
  }
  volumeAction<T = ResourceView>(name: string, action: VolumeActionName, input: Record<string, unknown> = {}): Promise<T> {
    return this.request('POST', `/v1/volumes/${encodeURIComponent(name)}?action=${action}`, input);
  }
  attachVolume(name: string, input: { hostId: string; disableFrontend?: boolean; attachmentID?: string }): Promise<ResourceView> {
    return this.volumeAction(name, 'attach', input);
  }
  detachVolume(name: string, input: { hostId?: string; attachmentID?: string; forceDetach?: boolean } = {}): Promise<ResourceView> {
    return this.volumeAction(name, 'detach', input);
  }
  expandVolume(name: string, size: number | string): Promise<ResourceView> {
    return this.volumeAction(name, 'expand', { size });
  }
  updateReplicaCount(name: string, replicaCount: number): Promise<ResourceView> {
    return this.volumeAction(name, 'updateReplicaCount', { replicaCount });
  }

  /** 0: the setting snapshot-max-count. */
  updateSnapshotMaxCount(name: string, snapshotMaxCount: number): Promise<ResourceView> {
    return this.volumeAction(name, 'updateSnapshotMaxCount', { snapshotMaxCount });
  }

  /** Bytes, or a size such as "10Gi"; 0: no limit. */
  updateSnapshotMaxSize(name: string, snapshotMaxSize: number | string): Promise<ResourceView> {
    return this.volumeAction(name, 'updateSnapshotMaxSize', { snapshotMaxSize });
  }
  createSnapshot(volume: string, input: { name?: string; labels?: Record<string, string> } = {}): Promise<ResourceView> {
    return this.volumeAction(volume, 'snapshotCreate', input);
  }
  listSnapshots(volume: string): Promise<CollectionView> {
    return this.volumeAction(volume, 'snapshotList');
  }
  deleteSnapshot(volume: string, name: string): Promise<ResourceView> {
    return this.volumeAction(volume, 'snapshotDelete', { name });
  }
  revertSnapshot(volume: string, name: string): Promise<ResourceView> {
    return this.volumeAction(volume, 'snapshotRevert', { name });
  }
  purgeSnapshots(volume: string): Promise<ResourceView> {
    return this.volumeAction(volume, 'snapshotPurge');
  }
  checkSnapshots(volume: string): Promise<ResourceView> {
    return this.volumeAction(volume, 'snapshotCheck');
  }
  listReplicas(volume?: string): Promise<CollectionView> {
    return this.request('GET', `/v1/replicas${volume === undefined ? '' : `?volume=${encodeURIComponent(volume)}`}`);
  }
  listEngines(volume?: string): Promise<CollectionView> {
    return this.request('GET', `/v1/engines${volume === undefined ? '' : `?volume=${encodeURIComponent(volume)}`}`);
  }
  /** Longhorn's diskUpdate: `disks` replaces the node's whole disk set. */
  updateNodeDisks(name: string, disks: Readonly<Record<string, Readonly<Record<string, unknown>>>>): Promise<ResourceView> {
    return this.request('POST', `/v1/nodes/${encodeURIComponent(name)}?action=diskUpdate`, { disks });
  }
  listNodes(): Promise<CollectionView> {
    return this.request('GET', '/v1/nodes');
  }
  getNode(name: string): Promise<ResourceView> {
    return this.request('GET', `/v1/nodes/${encodeURIComponent(name)}`);
  }
  updateNode(name: string, input: { allowScheduling?: boolean; evictionRequested?: boolean; tags?: string[] }): Promise<ResourceView> {
    return this.request('PUT', `/v1/nodes/${encodeURIComponent(name)}`, input);
  }
  listSettings(): Promise<{ data: SettingView[] }> {
    return this.request('GET', '/v1/settings');
  }
  getSetting(name: string): Promise<SettingView> {
    return this.request('GET', `/v1/settings/${encodeURIComponent(name)}`);
  }
  updateSetting(name: string, value: string): Promise<SettingView> {
    return this.request('PUT', `/v1/settings/${encodeURIComponent(name)}`, { value });
  }
}
