import type { Cookies, RequestEvent } from '@sveltejs/kit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ada, closedPort, json, startServer, type TestServer } from '$lib/testing/server';

// The hooks read their settings from here; the API is the test server.
const config = vi.hoisted(() => ({
	INTERNAL_API_URL: '',
	REQUEST_ID_HEADER: undefined as string | undefined,
	METRICS_PORT: '',
	METRICS_HOST: '127.0.0.1'
}));
vi.mock('$env/dynamic/private', () => ({ env: config }));
// As under `node build`: the logs are JSON lines.
vi.mock('$app/environment', () => ({ dev: false, building: false, version: 'test' }));
// Records whether anything imports the Sentry SDK (SENTRY_DSN is not set here).
const sentry = vi.hoisted(() => ({ imported: false }));
vi.mock('@sentry/node', async (importOriginal) => {
	sentry.imported = true;
	return importOriginal();
});

const { handle, handleError, init } = await import('./hooks.server');
const { sentryLoaded } = await import('$lib/server/sentry');

let server: TestServer;

beforeAll(async () => {
	server = await startServer({
		'GET /api/auth/me/': (req, res) =>
			req.headers.authorization === 'Token good'
				? json(res, 200, ada)
				: json(res, 401, { detail: 'Invalid token.' })
	});
	config.INTERNAL_API_URL = server.url;
});

afterAll(() => server.close());

interface RunOptions {
	page?: () => Response | Promise<Response>;
	url?: string;
	init?: RequestInit;
	route?: string | null;
	params?: Record<string, string>;
}

function fakeEvent(token: string | null, options: RunOptions = {}) {
	const jar = new Map(token ? [['session', token]] : []);
	const cookies = {
		get: (name: string) => jar.get(name),
		delete: (name: string) => void jar.delete(name)
	} as unknown as Cookies;
	// The browser claims an address of its own; only the socket's counts.
	const request = new Request(options.url ?? 'http://localhost/', {
		...options.init,
		headers: { 'x-forwarded-for': '198.51.100.66', ...options.init?.headers }
	});
	const event = {
		cookies,
		locals: {},
		request,
		url: new URL(request.url),
		route: { id: options.route === undefined ? '/' : options.route },
		params: options.params ?? {},
		getClientAddress: () => '203.0.113.7'
	} as unknown as RequestEvent;
	return { event, jar };
}

/** Runs the hook for a request with this session cookie; returns what it left in locals. */
async function run(token: string | null, options: RunOptions = {}) {
	const { event, jar } = fakeEvent(token, options);
	const page = options.page ?? (() => new Response('page'));
	const response = await handle({ event, resolve: async () => page() });
	return { locals: event.locals, cookie: jar.get('session') ?? null, response };
}

// What the hooks log, kept here instead of printed.
const output: string[] = [];
beforeAll(() => {
	vi.spyOn(console, 'log').mockImplementation((line: string) => void output.push(line));
});
afterAll(() => vi.restoreAllMocks());

/** The log lines (JSON objects) written while `fn` runs. */
async function logged(fn: () => Promise<unknown>): Promise<Record<string, unknown>[]> {
	const start = output.length;
	await fn();
	return output.slice(start).map((line) => JSON.parse(line));
}

const SECURITY_HEADERS = {
	'x-content-type-options': 'nosniff',
	'referrer-policy': 'strict-origin-when-cross-origin',
	'x-frame-options': 'DENY'
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('handle', () => {
	it('leaves anonymous visitors anonymous without calling the API', async () => {
		const before = server.requests.length;
		const { locals } = await run(null);
		expect(locals.user).toBeNull();
		expect(locals.apiUnavailable).toBe(false);
		expect(locals.api.token).toBeNull();
		expect(server.requests.length).toBe(before);
	});

	it('resolves the user from the session cookie', async () => {
		const { locals, cookie, response } = await run('good');
		expect(locals.user).toEqual(ada);
		expect(locals.api.token).toBe('good');
		expect(cookie).toBe('good');
		expect(await response.text()).toBe('page');
	});

	it("forwards the client's address, never the browser's X-Forwarded-For", async () => {
		const { locals } = await run('good');
		expect(server.requests.at(-1)!.headers['x-forwarded-for']).toBe('203.0.113.7');
		expect(locals.api.clientAddress).toBe('203.0.113.7');
		const { locals: after } = await run('stale');
		expect(after.api.clientAddress).toBe('203.0.113.7');
	});

	it('adds the security headers and X-Request-ID to every response: pages, endpoints, redirects, errors', async () => {
		const responses = [
			() => new Response('<p>page</p>', { headers: { 'content-type': 'text/html' } }),
			() => Response.json({ ok: true }),
			() => new Response(null, { status: 303, headers: { location: '/login' } }),
			() => new Response('Not found', { status: 404 }),
			() => new Response('Internal Error', { status: 500 })
		];
		for (const page of responses) {
			for (const token of [null, 'good', 'stale']) {
				const { response, locals } = await run(token, { page });
				for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
					expect(response.headers.get(name), `${name} on ${response.status}`).toBe(value);
				}
				expect(response.headers.get('x-request-id')).toBe(locals.requestId);
			}
		}
	});

	it('forgets a token the API no longer accepts', async () => {
		const { locals, cookie } = await run('stale');
		expect(locals.user).toBeNull();
		expect(locals.api.token).toBeNull();
		expect(cookie).toBeNull();
	});

	it('keeps the cookie, flags the API as unavailable and logs it when it is down', async () => {
		const url = config.INTERNAL_API_URL;
		config.INTERNAL_API_URL = `http://127.0.0.1:${await closedPort()}`;
		try {
			let locals!: App.Locals;
			let cookie: string | null = null;
			const lines = await logged(async () => ({ locals, cookie } = await run('good')));
			expect(locals.user).toBeNull();
			expect(locals.apiUnavailable).toBe(true);
			expect(cookie).toBe('good');
			expect(lines[0]).toMatchObject({
				level: 'error',
				event: 'api_call_failed',
				request_id: locals.requestId,
				call: 'GET /api/auth/me/',
				detail: expect.stringMatching(/ECONNREFUSED/)
			});
		} finally {
			config.INTERNAL_API_URL = url;
		}
	});
});

describe('request id', () => {
	const claimed = (id: string) => ({ init: { headers: { 'x-request-id': id } } });

	it('is new for every request, whatever the client sends, when REQUEST_ID_HEADER is unset', async () => {
		const { locals, response } = await run('good', claimed('chosen-by-client'));
		expect(locals.requestId).toMatch(UUID);
		expect(response.headers.get('x-request-id')).toBe(locals.requestId);
		expect(server.requests.at(-1)!.headers['x-request-id']).toBe(locals.requestId);
		const { locals: next } = await run(null);
		expect(next.requestId).toMatch(UUID);
		expect(next.requestId).not.toBe(locals.requestId);
	});

	it("is the proxy's when REQUEST_ID_HEADER names its header and the value is well-formed", async () => {
		config.REQUEST_ID_HEADER = 'x-request-id';
		try {
			const id = 'a3f1c2d4-5b6e-4f70-8a9b-0c1d2e3f4a5b';
			const { locals, response } = await run('good', claimed(id));
			expect(locals.requestId).toBe(id);
			expect(locals.api.requestId).toBe(id);
			expect(response.headers.get('x-request-id')).toBe(id);
			// The API hears it too: its log lines carry the same id.
			expect(server.requests.at(-1)!.headers['x-request-id']).toBe(id);
			// Also after the API refused the token.
			expect((await run('stale', claimed(id))).locals.api.requestId).toBe(id);
		} finally {
			config.REQUEST_ID_HEADER = undefined;
		}
	});

	it('is new when the header is missing or malformed', async () => {
		config.REQUEST_ID_HEADER = 'x-request-id';
		try {
			for (const bad of ['', 'has space', 'id;rm -rf /', '<script>', 'x'.repeat(129)]) {
				const { locals, response } = await run(null, claimed(bad));
				expect(locals.requestId, JSON.stringify(bad)).toMatch(UUID);
				expect(response.headers.get('x-request-id')).toBe(locals.requestId);
			}
			expect((await run(null)).locals.requestId).toMatch(UUID);
		} finally {
			config.REQUEST_ID_HEADER = undefined;
		}
	});
});

describe('request log', () => {
	it('writes one JSON line per request, after the answer', async () => {
		const cases = [
			{ token: null, status: 200, level: 'info', user_id: null },
			{ token: 'good', status: 303, level: 'info', user_id: ada.id },
			{ token: null, status: 404, level: 'warn', user_id: null },
			{ token: 'good', status: 500, level: 'error', user_id: ada.id }
		];
		for (const { token, status, level, user_id } of cases) {
			let requestId = '';
			const lines = await logged(async () => {
				const { locals } = await run(token, {
					url: 'http://localhost/me',
					route: '/me',
					page: () => new Response(null, { status })
				});
				requestId = locals.requestId;
			});
			expect(lines).toHaveLength(1);
			const [line] = lines;
			expect(Object.keys(line).sort()).toEqual(
				[
					'time',
					'level',
					'event',
					'request_id',
					'method',
					'path',
					'status',
					'duration_ms',
					'user_id'
				].sort()
			);
			expect(line).toEqual({
				time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
				level,
				event: 'request',
				request_id: requestId,
				method: 'GET',
				path: '/me',
				status,
				duration_ms: expect.any(Number),
				user_id
			});
			expect(Date.now() - Date.parse(line.time as string)).toBeLessThan(5000);
		}
	});

	it('logs a request that the app failed on as a 500, and lets the error through', async () => {
		const { event } = fakeEvent(null, { url: 'http://localhost/boom', route: null });
		const lines = await logged(async () => {
			const resolve = async (): Promise<Response> => {
				throw new Error('boom');
			};
			await expect(handle({ event, resolve })).rejects.toThrow('boom');
		});
		expect(lines).toEqual([expect.objectContaining({ status: 500, path: '/boom' })]);
	});

	it('never logs headers, cookies, tokens, query strings or form fields', async () => {
		const lines = await logged(async () => {
			await run('good', {
				url: 'http://localhost/login?next=%2Fme&token=s3cret-query',
				route: '/login',
				init: {
					method: 'POST',
					headers: {
						authorization: 'Bearer s3cret-authorization',
						cookie: 'session=s3cret-cookie',
						'content-type': 'application/x-www-form-urlencoded'
					},
					body: new URLSearchParams({ username: 'ada', password: 's3cret-password' })
				},
				page: () => new Response(null, { status: 303, headers: { location: '/me' } })
			});
			// A route whose parameters are one-time secrets.
			await run(null, {
				url: 'http://localhost/reset/MQ/s3cret-reset-token',
				route: '/reset/[uid]/[token]',
				params: { uid: 'MQ', token: 's3cret-reset-token' }
			});
		});
		expect(lines.map((line) => line.path)).toEqual(['/login', '/reset/[uid]/[token]']);
		expect(lines[0]).toMatchObject({ method: 'POST', status: 303, user_id: ada.id });
		const text = JSON.stringify(lines);
		expect(text).not.toMatch(/s3cret|good|Bearer|session=|password|next=|\?/);
	});
});

describe('metrics and error tracking', () => {
	let metricsUrl = '';

	beforeAll(async () => {
		const port = await closedPort();
		config.METRICS_PORT = String(port);
		metricsUrl = `http://127.0.0.1:${port}`;
		const lines = await logged(async () => init());
		expect(lines).toEqual([
			expect.objectContaining({ event: 'metrics_server_started', host: '127.0.0.1', port })
		]);
	});

	it('serves the request counters and Node metrics on METRICS_PORT', async () => {
		await logged(async () => {
			await run(null, { url: 'http://localhost/healthz', route: '/healthz' });
			await run(null, { url: 'http://localhost/healthz', route: '/healthz' });
			await run(null, {
				url: 'http://localhost/no/such/page',
				route: null,
				page: () => new Response('Not found', { status: 404 })
			});
		});
		const response = await fetch(`${metricsUrl}/metrics`);
		expect(response.status).toBe(200);
		expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
		const text = await response.text();
		expect(text).toMatch(/^http_requests_total\{method="GET",route="\/healthz",status="200"\} 2$/m);
		expect(text).toMatch(/^http_requests_total\{method="GET",route="unmatched",status="404"\} 1$/m);
		expect(text).toMatch(
			/^http_request_duration_seconds_count\{method="GET",route="\/healthz"\} 2$/m
		);
		expect(text).toMatch(/^http_request_duration_seconds_bucket\{le="0\.005",method="GET"/m);
		// The raw path never becomes a label.
		expect(text).not.toContain('/no/such/page');
		// Node's own: CPU, memory, event loop.
		expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
		expect(text).toMatch(/^nodejs_heap_size_used_bytes \d/m);
		expect(text).toMatch(/^nodejs_eventloop_lag_seconds \d/m);

		expect((await fetch(`${metricsUrl}/`)).status).toBe(404);
	});

	it('counts unusual methods as OTHER', async () => {
		await logged(() => run(null, { init: { method: 'PROPFIND' }, route: null }));
		const text = await (await fetch(`${metricsUrl}/metrics`)).text();
		expect(text).toMatch(/^http_requests_total\{method="OTHER",route="unmatched",status="200"\}/m);
		expect(text).not.toContain('PROPFIND');
	});

	it('leaves /metrics on the app port to the routes (none: a 404)', async () => {
		const resolve = vi.fn(async () => new Response('Not found', { status: 404 }));
		const { event } = fakeEvent(null, { url: 'http://localhost/metrics', route: null });
		await logged(async () => {
			const response = await handle({ event, resolve });
			expect(response.status).toBe(404);
		});
		expect(resolve).toHaveBeenCalledOnce();
	});

	it('without SENTRY_DSN, logs unexpected errors but never loads Sentry', async () => {
		const { event } = fakeEvent(null, { url: 'http://localhost/me', route: '/me' });
		event.locals.requestId = 'req-1';
		let result: unknown;
		const lines = await logged(async () => {
			result = handleError({
				error: new Error('boom'),
				event,
				status: 500,
				message: 'Internal Error'
			});
		});
		expect(result).toEqual({ message: 'Internal Error', requestId: 'req-1' });
		expect(lines).toEqual([
			expect.objectContaining({
				level: 'error',
				event: 'unexpected_error',
				request_id: 'req-1',
				path: '/me',
				error: 'Error: boom',
				stack: expect.stringContaining('boom')
			})
		]);
		expect(sentryLoaded()).toBe(false);
		expect(sentry.imported).toBe(false);
	});

	it('does not report a path no route matches', async () => {
		const { event } = fakeEvent(null, { url: 'http://localhost/nope', route: null });
		event.locals.requestId = 'req-2';
		const lines = await logged(async () => {
			const result = handleError({
				error: new Error('Not found: /nope'),
				event,
				status: 404,
				message: 'Not Found'
			});
			expect(result).toEqual({ message: 'Not Found', requestId: 'req-2' });
		});
		expect(lines).toEqual([]);
	});
});
