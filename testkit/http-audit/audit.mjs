// Runs graphql-http's server audits against the URL given as the first argument and prints one
// JSON line per audit: { id, name, status, reason }. The Rust test decides what must pass.
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs <graphql-url>');
  process.exit(2);
}

for (const audit of serverAudits({ url, fetchFn: fetch })) {
  const result = await audit.fn();
  console.log(
    JSON.stringify({
      id: audit.id,
      name: audit.name,
      status: result.status,
      reason: result.status === 'ok' ? undefined : result.reason,
    }),
  );
}
