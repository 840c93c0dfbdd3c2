import type { RequestHandler } from './$types';

// Liveness of this server alone, for the container's HEALTHCHECK: it calls no
// API, so a backend outage does not restart the frontend.
export const GET: RequestHandler = () =>
	new Response('ok\n', { headers: { 'content-type': 'text/plain', 'cache-control': 'no-store' } });
