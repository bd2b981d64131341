// Sizes as people and Longhorn clients write them: bytes as a number or a decimal string, or a
// number with a Kubernetes quantity suffix (K, M, G, T are powers of 1000; Ki, Mi, Gi, Ti of 1024).
const multipliers: Readonly<Record<string, number>> = {
  '': 1,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
};

/** Bytes, or a sentence saying why the text is not a size. Never returns an inexact number. */
export function parseSizeText(value: unknown): number | string {
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) && value >= 0 ? value : `size ${String(value)} is not a whole number of bytes`;
  }
  if (typeof value !== 'string') return `size must be a number of bytes or a string such as "10Gi", not ${typeof value}`;
  const match = /^([0-9]{1,16})(Ki|Mi|Gi|Ti|K|M|G|T)?$/.exec(value.trim());
  if (match === null) return `size ${JSON.stringify(value.slice(0, 40))} is not a size: write bytes or a number with K, M, G, T, Ki, Mi, Gi or Ti`;
  const bytes = Number(match[1]) * (multipliers[match[2] ?? ''] ?? 1);
  return Number.isSafeInteger(bytes) ? bytes : `size ${value} is too large`;
}

/** 10737418240 → "10 GiB"; exact binary units when the size is a whole number of them. */
export function formatSize(bytes: number): string {
  for (const [unit, factor] of [['TiB', 1024 ** 4], ['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes >= factor) {
      const value = bytes / factor;
      return `${Number.isInteger(value) ? value : value.toFixed(1)} ${unit}`;
    }
  }
  return `${bytes} B`;
}
