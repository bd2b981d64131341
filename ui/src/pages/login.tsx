// The login page: asks for the API token (DATA/api-token on the host) and checks it by opening a
// session (which also sets the event-stream cookie).
import { useState } from 'preact/hooks';
import { errorText, logIn } from '../api.ts';

export function LoginPage(props: { onLoggedIn: () => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await logIn(token.trim());
      props.onLoggedIn();
    } catch (caught) {
      setError(errorText(caught));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login" id="main">
      <form onSubmit={(e) => void submit(e)} aria-describedby="login-help">
        <h1>Shorthorn</h1>
        <p id="login-help">
          Enter the API token. It is in <code>api-token</code> in the data directory of the host running Shorthorn
          (<code>./shorthorn-data/api-token</code> for <code>npm start</code>).
        </p>
        <label for="token">API token</label>
        <input id="token" name="token" type="password" autoComplete="current-password" required value={token}
          onInput={(e) => setToken(e.currentTarget.value)} aria-invalid={error !== undefined} autoFocus />
        {error !== undefined && <p class="inline-error" role="alert">{error}</p>}
        <button type="submit" disabled={busy || token.trim() === ''}>{busy ? 'Checking…' : 'Log in'}</button>
      </form>
    </main>
  );
}
