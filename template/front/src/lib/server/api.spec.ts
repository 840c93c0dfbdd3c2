import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ada, closedPort, json, startServer, type TestServer } from '$lib/testing/server';
import type { Health, User } from '$lib/types';
import { createApiClient } from './api';

let server: TestServer;

beforeAll(async () => {
	server = await startServer({
		'GET /api/health/': (_, res) => json(res, 200, { status: 'ok' }),
		'GET /api/auth/me/': (req, res) =>
			req.headers.authorization === 'Token good'
				? json(res, 200, ada)
				: json(res, 401, { detail: 'Invalid token.' }),
		'POST /api/auth/signup/': (_, res) =>
			json(res, 400, {
				username: ['A user with that username already exists.'],
				password: ['This password is too short.', 'This password is too common.'],
				non_field_errors: ['Something about the whole form.']
			}),
		'POST /api/auth/logout/': (_, res) => {
			res.writeHead(204);
			res.end();
		},
		'GET /prefix/api/health/': (_, res) => json(res, 200, { status: 'ok' }),
		'GET /api/down/': (_, res) => json(res, 503, { status: 'unavailable' }),
		'POST /api/auth/login/': (_, res) => {
			res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '60' });
			res.end(
				JSON.stringify({ detail: 'Request was throttled. Expected available in 60 seconds.' })
			);
		},
		'GET /api/crash/': (_, res) => {
			res.writeHead(500, { 'content-type': 'text/html' });
			res.end('<h1>Server Error (500)</h1>');
		},
		'GET /api/garbage/': (_, res) => {
			res.writeHead(200, { 'content-type': 'application/json' });
			res.end('{not json');
		},
		'GET /api/slow/': (_, res) => {
			setTimeout(() => json(res, 200, {}), 2000);
		}
	});
});

afterAll(() => server.close());

describe('ApiClient', () => {
	it('GETs JSON, without an Authorization header when anonymous', async () => {
		const api = createApiClient({ baseUrl: server.url });
		const result = await api.get<Health>('/api/health/');
		expect(result).toEqual({ ok: true, status: 200, data: { status: 'ok' } });
		const request = server.requests.at(-1)!;
		expect(request.headers.accept).toBe('application/json');
		expect(request.headers.authorization).toBeUndefined();
		expect(request.headers['x-forwarded-for']).toBeUndefined();
	});

	it("sends the browser's address as X-Forwarded-For on every call, keeping it across withToken()", async () => {
		const api = createApiClient({ baseUrl: server.url, clientAddress: '203.0.113.7' });
		const calls = [
			() => api.get('/api/health/'),
			() => api.post('/api/auth/signup/', {}),
			() => api.withToken('good').get('/api/auth/me/'),
			() => api.withToken('good').post('/api/auth/logout/')
		];
		for (const call of calls) {
			await call();
			expect(server.requests.at(-1)!.headers['x-forwarded-for']).toBe('203.0.113.7');
		}
		const ipv6 = createApiClient({ baseUrl: server.url, clientAddress: '2001:db8::1' });
		await ipv6.get('/api/health/');
		expect(server.requests.at(-1)!.headers['x-forwarded-for']).toBe('2001:db8::1');
	});

	it("sends the request's id as X-Request-ID on every call, keeping it across withToken()", async () => {
		const api = createApiClient({ baseUrl: server.url, requestId: 'req-7f3a' });
		const calls = [
			() => api.get('/api/health/'),
			() => api.post('/api/auth/signup/', {}),
			() => api.withToken('good').get('/api/auth/me/'),
			() => api.withToken('good').withToken(null).post('/api/auth/logout/')
		];
		for (const call of calls) {
			await call();
			expect(server.requests.at(-1)!.headers['x-request-id']).toBe('req-7f3a');
		}
		await createApiClient({ baseUrl: server.url }).get('/api/health/');
		expect(server.requests.at(-1)!.headers['x-request-id']).toBeUndefined();
	});

	it('sends the token as `Authorization: Token <key>`', async () => {
		const good = await createApiClient({ baseUrl: server.url, token: 'good' }).get<User>(
			'/api/auth/me/'
		);
		expect(good.ok && good.data.username).toBe('ada');
		expect(server.requests.at(-1)!.headers.authorization).toBe('Token good');

		const bad = await createApiClient({ baseUrl: server.url, token: 'bad' }).get('/api/auth/me/');
		expect(bad).toMatchObject({ ok: false, kind: 'http', status: 401, detail: 'Invalid token.' });
	});

	it('withToken() keeps the server and swaps the credentials', async () => {
		const api = createApiClient({ baseUrl: server.url, token: 'good' }).withToken(null);
		expect(api.token).toBeNull();
		const result = await api.get('/api/auth/me/');
		expect(result.status).toBe(401);
	});

	it('POSTs JSON and parses DRF field errors', async () => {
		const api = createApiClient({ baseUrl: server.url });
		const body = { username: 'ada', email: 'ada@example.com', password: '123' };
		const result = await api.post('/api/auth/signup/', body);
		const request = server.requests.at(-1)!;
		expect(request.method).toBe('POST');
		expect(request.headers['content-type']).toBe('application/json');
		expect(JSON.parse(request.body)).toEqual(body);

		expect(result.ok).toBe(false);
		if (result.ok || result.kind !== 'http') throw new Error('expected an HTTP error');
		expect(result.status).toBe(400);
		expect(result.fieldErrors).toEqual({
			username: ['A user with that username already exists.'],
			password: ['This password is too short.', 'This password is too common.']
		});
		expect(result.nonFieldErrors).toEqual(['Something about the whole form.']);
		expect(result.detail).toBeNull();
	});

	it('treats 204 No Content as success without data', async () => {
		const result = await createApiClient({ baseUrl: server.url, token: 'good' }).post(
			'/api/auth/logout/'
		);
		expect(result).toEqual({ ok: true, status: 204, data: null });
	});

	it('keeps the body of a 503 health answer', async () => {
		const result = await createApiClient({ baseUrl: server.url }).get('/api/down/');
		expect(result).toMatchObject({
			ok: false,
			kind: 'http',
			status: 503,
			detail: null,
			fieldErrors: {},
			body: { status: 'unavailable' }
		});
	});

	it("keeps a throttled answer's detail", async () => {
		const result = await createApiClient({ baseUrl: server.url }).post('/api/auth/login/', {});
		expect(result).toMatchObject({
			ok: false,
			kind: 'http',
			status: 429,
			detail: 'Request was throttled. Expected available in 60 seconds.',
			fieldErrors: {}
		});
	});

	it('describes an answer that is not JSON', async () => {
		const api = createApiClient({ baseUrl: server.url });
		expect(await api.get('/api/crash/')).toMatchObject({
			ok: false,
			kind: 'http',
			status: 500,
			detail: 'The API answered HTTP 500 Internal Server Error',
			body: null
		});
		expect(await api.get('/api/garbage/')).toMatchObject({
			ok: false,
			kind: 'http',
			status: 200,
			detail: 'The API answered with a body that is not JSON'
		});
	});

	it('keeps a path prefix of the base URL', async () => {
		const api = createApiClient({ baseUrl: `${server.url}/prefix` });
		expect(api.url('/api/health/').href).toBe(`${server.url}/prefix/api/health/`);
		expect((await api.get<Health>('/api/health/')).ok).toBe(true);
	});

	it('refuses paths that would leave the API', () => {
		const api = createApiClient({ baseUrl: server.url });
		expect(() => api.url('//evil.example/x')).toThrow(/single "\/"/);
		expect(() => api.url('api/health/')).toThrow(/single "\/"/);
	});

	it('turns a refused connection into a network error', async () => {
		const port = await closedPort();
		const result = await createApiClient({ baseUrl: `http://127.0.0.1:${port}` }).get(
			'/api/health/'
		);
		expect(result).toEqual({
			ok: false,
			kind: 'network',
			status: 0,
			detail: `cannot reach the API at http://127.0.0.1:${port}: ECONNREFUSED`
		});
	});

	it('gives up after the time-out', async () => {
		const started = Date.now();
		const result = await createApiClient({ baseUrl: server.url, timeoutMs: 200 }).get('/api/slow/');
		expect(Date.now() - started).toBeLessThan(1500);
		expect(result).toMatchObject({ ok: false, kind: 'network', status: 0 });
		expect(result.ok === false && result.detail).toMatch(/did not answer within 200 ms/);
	});

	it('reports a missing or invalid INTERNAL_API_URL on every call', async () => {
		for (const [baseUrl, message] of [
			[undefined, 'INTERNAL_API_URL is not set'],
			['', 'INTERNAL_API_URL is not set'],
			['giga-backend:8000', 'INTERNAL_API_URL must be http(s): "giga-backend:8000"'],
			['not a url', 'INTERNAL_API_URL is not a URL: "not a url"']
		] as const) {
			const result = await createApiClient({ baseUrl }).get('/api/health/');
			expect(result).toEqual({ ok: false, kind: 'network', status: 0, detail: message });
		}
	});
});
