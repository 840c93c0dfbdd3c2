// Sentry for real: the SDK sends its envelopes to a local server standing in
// for sentry.io, and the test reads what would have left the machine.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import type { RequestEvent } from '@sveltejs/kit';
import type { ErrorEvent } from '@sentry/node';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ada } from '$lib/testing/server';

const config = vi.hoisted(() => ({ SENTRY_DSN: '', SENTRY_ENVIRONMENT: 'test' }));
vi.mock('$env/dynamic/private', () => ({ env: config }));
vi.mock('$app/environment', () => ({ dev: false, building: false, version: 'test' }));

const { handleError, init } = await import('../../hooks.server');
const { flushSentry, scrub, scrubBreadcrumb, sentryLoaded } = await import('./sentry');

/** What the stand-in for Sentry received: the raw bodies, unzipped. */
const envelopes: { url: string; body: string }[] = [];
let sentry: Server;

beforeAll(async () => {
	sentry = createServer((req, res) => {
		const chunks: Buffer[] = [];
		req.on('data', (chunk: Buffer) => chunks.push(chunk));
		req.on('end', () => {
			const raw = Buffer.concat(chunks);
			const gzip = req.headers['content-encoding'] === 'gzip';
			envelopes.push({ url: req.url ?? '', body: (gzip ? gunzipSync(raw) : raw).toString() });
			res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
		});
	});
	await new Promise<void>((resolve) => sentry.listen(0, '127.0.0.1', resolve));
	const { port } = sentry.address() as AddressInfo;
	config.SENTRY_DSN = `http://publickey@127.0.0.1:${port}/1`;
	vi.spyOn(console, 'log').mockImplementation(() => {});
	await init();
});

afterAll(async () => {
	vi.restoreAllMocks();
	sentry.closeAllConnections();
	await new Promise((resolve) => sentry.close(resolve));
});

/** The items of an envelope: a header line, then an item header and a payload per item. */
function items(body: string): { type: string; payload: Record<string, unknown> }[] {
	const [, ...lines] = body.split('\n').filter(Boolean);
	const result = [];
	for (let i = 0; i + 1 < lines.length; i += 2) {
		result.push({ type: JSON.parse(lines[i]).type, payload: JSON.parse(lines[i + 1]) });
	}
	return result;
}

describe('with SENTRY_DSN', () => {
	it('reports unexpected errors with the request id, and none of the secrets', async () => {
		expect(sentryLoaded()).toBe(true);
		const url = new URL('http://localhost/reset/MQ/s3cret-reset-token?token=s3cret-query');
		const event = {
			url,
			route: { id: '/reset/[uid]/[token]' },
			params: { uid: 'MQ', token: 's3cret-reset-token' },
			request: new Request(url, {
				method: 'POST',
				headers: {
					authorization: 'Token s3cret-authorization',
					cookie: 'session=s3cret-cookie',
					'content-type': 'application/x-www-form-urlencoded',
					'user-agent': 'vitest'
				},
				body: new URLSearchParams({ password: 's3cret-password' })
			}),
			locals: { requestId: 'req-42', user: ada }
		} as unknown as RequestEvent;

		const shown = handleError({
			error: new Error('boom'),
			event,
			status: 500,
			message: 'Internal Error'
		});
		expect(shown).toEqual({ message: 'Internal Error', requestId: 'req-42' });
		expect(await flushSentry()).toBe(true);

		const reports = envelopes.flatMap(({ body }) =>
			items(body).filter((item) => item.type === 'event')
		);
		expect(reports).toHaveLength(1);
		const report = reports[0].payload as unknown as ErrorEvent;
		expect(envelopes[0].url).toMatch(/^\/api\/1\/envelope\//);
		expect(report.exception?.values?.[0]).toMatchObject({ type: 'Error', value: 'boom' });
		expect(report.tags).toMatchObject({ request_id: 'req-42', route: '/reset/[uid]/[token]' });
		expect(report.environment).toBe('test');
		expect(report.user).toEqual({ id: '1' });
		expect(report.request).toEqual({
			method: 'POST',
			url: 'http://localhost/reset/[uid]/[token]',
			headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'vitest' }
		});
		const everything = envelopes.map(({ body }) => body).join('\n');
		expect(everything).not.toMatch(/s3cret|ada@example\.com|authorization|cookie/i);
	});

	it('keeps only the safe parts of any event (beforeSend)', () => {
		const event = {
			type: undefined,
			request: {
				method: 'GET',
				url: 'https://app.example.com/me?token=s3cret',
				query_string: 'token=s3cret',
				cookies: { session: 's3cret' },
				data: { password: 's3cret' },
				env: { REMOTE_ADDR: '203.0.113.7' },
				headers: { Authorization: 'Token s3cret', 'User-Agent': 'curl', 'X-Api-Key': 's3cret' }
			},
			user: { id: 7, email: 'ada@example.com', ip_address: '203.0.113.7', username: 'ada' },
			breadcrumbs: [
				{
					category: 'http',
					data: { url: 'http://api/x/?key=s3cret', 'http.query': 'key=s3cret', method: 'GET' }
				}
			]
		} satisfies ErrorEvent;
		expect(scrub(structuredClone(event))).toEqual({
			type: undefined,
			request: {
				method: 'GET',
				url: 'https://app.example.com/me',
				headers: { 'User-Agent': 'curl' }
			},
			user: { id: 7 },
			breadcrumbs: [{ category: 'http', data: { url: 'http://api/x/', method: 'GET' } }]
		});
		expect(scrub({ type: undefined, user: { email: 'ada@example.com' } }).user).toBeUndefined();
		expect(scrubBreadcrumb({ message: 'no data' })).toEqual({ message: 'no data' });
	});
});
