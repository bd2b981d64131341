// Kubernetes label selectors: parse the string form once, then match label maps. Syntax and
// semantics follow k8s.io/apimachinery/pkg/labels: requirements joined by ',' (all must hold);
// `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k` (exists), `!k` (does not exist).
// `!=` and `notin` also match objects without the key, as in Kubernetes.
import { labelSelectorLengthMax } from '../../lib/limits.ts';
import { StoreError } from './resource-store.ts';

export type LabelRequirement =
  | { readonly op: 'eq' | 'ne'; readonly key: string; readonly value: string }
  | { readonly op: 'in' | 'notin'; readonly key: string; readonly values: readonly string[] }
  | { readonly op: 'exists' | 'absent'; readonly key: string };

export type LabelSelector = readonly LabelRequirement[];

// Key: optional DNS-subdomain prefix and '/', then a name of at most 63 characters.
const keyName = '[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?';
const keyRegExp = new RegExp(`^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?${keyName}$`);
const valueRegExp = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

type Token =
  | { readonly t: 'word'; readonly text: string; readonly at: number }
  | { readonly t: '!' | '=' | '==' | '!=' | '(' | ')' | ','; readonly at: number };

function invalid(selector: string, at: number, why: string): StoreError {
  return new StoreError('invalid', `Bad label selector ${JSON.stringify(selector)} at ${at}: ${why}`);
}

function tokenize(selector: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < selector.length) {
    const c = selector[i] ?? '';
    if (c === ' ' || c === '\t') {
      i++;
    } else if (c === '!' && selector[i + 1] === '=') {
      tokens.push({ t: '!=', at: i });
      i += 2;
    } else if (c === '=' && selector[i + 1] === '=') {
      tokens.push({ t: '==', at: i });
      i += 2;
    } else if (c === '!' || c === '=' || c === '(' || c === ')' || c === ',') {
      tokens.push({ t: c, at: i });
      i++;
    } else if (/[A-Za-z0-9_.\-/]/.test(c)) {
      const start = i;
      while (i < selector.length && /[A-Za-z0-9_.\-/]/.test(selector[i] ?? '')) i++;
      tokens.push({ t: 'word', text: selector.slice(start, i), at: start });
    } else {
      throw invalid(selector, i, `unexpected character ${JSON.stringify(c)}`);
    }
  }
  return tokens;
}

/** Parse a selector string; the empty string selects everything. Throws StoreError 'invalid'. */
export function parseLabelSelector(selector: string): LabelSelector {
  if (selector.length > labelSelectorLengthMax) {
    throw new StoreError('invalid', `Label selector is ${selector.length} characters; at most ${labelSelectorLengthMax}`);
  }
  const tokens = tokenize(selector);
  const requirements: LabelRequirement[] = [];
  let p = 0;
  const peek = (): Token | undefined => tokens[p];
  const end = selector.length;
  const word = (what: string): string => {
    const token = tokens[p];
    if (token?.t !== 'word') throw invalid(selector, token?.at ?? end, `expected ${what}`);
    p++;
    return token.text;
  };
  const key = (): string => {
    const at = peek()?.at ?? end;
    const text = word('a label key');
    if (!keyRegExp.test(text)) throw invalid(selector, at, `${JSON.stringify(text)} is not a valid label key`);
    return text;
  };
  const value = (): string => {
    const token = peek();
    // An empty value is legal: `k=` selects objects whose label k is the empty string.
    if (token === undefined || token.t === ',' || token.t === ')') return '';
    const text = word('a label value');
    if (!valueRegExp.test(text)) throw invalid(selector, token.at, `${JSON.stringify(text)} is not a valid label value`);
    return text;
  };
  const valueSet = (): string[] => {
    if (peek()?.t !== '(') throw invalid(selector, peek()?.at ?? end, "expected '('");
    p++;
    const values: string[] = [];
    for (;;) {
      values.push(value());
      const token = peek();
      p++;
      if (token?.t === ')') return values;
      if (token?.t !== ',') throw invalid(selector, token?.at ?? end, "expected ',' or ')'");
    }
  };
  if (tokens.length === 0) return requirements;
  for (;;) {
    if (peek()?.t === '!') {
      p++;
      requirements.push({ op: 'absent', key: key() });
    } else {
      const k = key();
      const op = peek();
      if (op === undefined || op.t === ',') {
        requirements.push({ op: 'exists', key: k });
      } else if (op.t === '=' || op.t === '==') {
        p++;
        requirements.push({ op: 'eq', key: k, value: value() });
      } else if (op.t === '!=') {
        p++;
        requirements.push({ op: 'ne', key: k, value: value() });
      } else if (op.t === 'word' && (op.text === 'in' || op.text === 'notin')) {
        p++;
        requirements.push({ op: op.text, key: k, values: valueSet() });
      } else {
        throw invalid(selector, op.at, 'expected an operator (=, ==, !=, in, notin)');
      }
    }
    const next = peek();
    if (next === undefined) return requirements;
    if (next.t !== ',') throw invalid(selector, next.at, "expected ','");
    p++;
  }
}

export function matchesLabels(selector: LabelSelector, labels: Readonly<Record<string, string>> | undefined): boolean {
  const has = (k: string): boolean => labels !== undefined && Object.hasOwn(labels, k);
  return selector.every((r) => {
    const v = has(r.key) ? labels?.[r.key] : undefined;
    switch (r.op) {
      case 'eq':
        return v === r.value;
      case 'ne':
        return v !== r.value;
      case 'in':
        return v !== undefined && r.values.includes(v);
      case 'notin':
        return v === undefined || !r.values.includes(v);
      case 'exists':
        return v !== undefined;
      case 'absent':
        return v === undefined;
    }
  });
}
