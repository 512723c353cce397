// The organiser's token. `conftools up` prints a dashboard URL with `?token=…`; the token moves
// into localStorage and out of the address bar at once, so the URL can be shared or bookmarked
// without the credential in it. It can also be pasted into the header field.
const STORAGE_KEY = 'conftools.token';

let current: string | null = null;

export function loadToken(): string | null {
  const url = new URL(window.location.href);
  const fromUrl = url.searchParams.get('token');
  if (fromUrl) {
    localStorage.setItem(STORAGE_KEY, fromUrl.trim());
    url.searchParams.delete('token');
    history.replaceState(history.state, '', url.pathname + url.search + url.hash);
  }
  current = localStorage.getItem(STORAGE_KEY);
  return current;
}

export function token(): string | null {
  return current;
}

export function setToken(value: string | null): void {
  current = value && value.trim() ? value.trim() : null;
  if (current) localStorage.setItem(STORAGE_KEY, current);
  else localStorage.removeItem(STORAGE_KEY);
}
