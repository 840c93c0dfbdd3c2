// Prometheus metrics: Node's process metrics and the requests this server
// answered. They are served on a port of their own (METRICS_PORT), never on the
// app's, so that the public site does not expose them.
import { createServer, type Server } from 'node:http';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

// A registry of this module's own: when vite dev reloads the module, the new
// copy starts afresh instead of registering the same metrics twice.
const registry = new Registry();
collectDefaultMetrics({ register: registry });

const requests = new Counter({
	name: 'http_requests_total',
	help: 'HTTP requests answered, by method, route and status.',
	labelNames: ['method', 'route', 'status'] as const,
	registers: [registry]
});

const duration = new Histogram({
	name: 'http_request_duration_seconds',
	help: 'Time to answer HTTP requests, by method and route.',
	labelNames: ['method', 'route'] as const,
	registers: [registry]
});

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/**
 * Counts one answered request. Labels come from bounded sets so that clients
 * cannot create series at will: the route's id (`null` for a path no route
 * matched), never the path, and OTHER for unusual methods.
 */
export function observeRequest(
	method: string,
	route: string | null,
	status: number,
	seconds: number
): void {
	const labels = { method: METHODS.has(method) ? method : 'OTHER', route: route ?? 'unmatched' };
	requests.inc({ ...labels, status: String(status) });
	duration.observe(labels, seconds);
}

/** Serves GET /metrics in Prometheus' text format on `host`:`port`. */
export async function startMetricsServer(port: number, host: string): Promise<Server> {
	const server = createServer((req, res) => {
		if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
			res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found\n');
			return;
		}
		registry.metrics().then(
			(text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
			() => res.writeHead(500, { 'content-type': 'text/plain' }).end('Metrics failed\n')
		);
	});
	// adapter-node shuts down gracefully by closing its own server and letting
	// the event loop drain: this one must not keep the process alive.
	server.unref();
	await new Promise<void>((resolve, reject) => {
		server.once('error', reject);
		server.listen(port, host, resolve);
	});
	return server;
}
