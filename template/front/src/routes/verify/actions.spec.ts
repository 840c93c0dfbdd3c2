import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAction } from '$lib/testing/actions';
import { json, startServer, type TestServer } from '$lib/testing/server';
import { actions } from './+page.server';

const OFF = 'This site does not verify email addresses.';
let server: TestServer;

beforeAll(async () => {
	server = await startServer({
		'POST /api/auth/email/verify/resend/': (req, res) =>
			JSON.parse(req.body).email === 'off@example.com'
				? json(res, 404, { detail: OFF })
				: json(res, 202, { detail: 'A new link is on its way.' })
	});
});

afterAll(() => server.close());

const resend = (email: string) =>
	runAction(actions.default, {
		url: 'http://localhost:3000/verify',
		form: { email },
		apiUrl: server.url
	});

describe('resend-verification action', () => {
	it('asks the API for a new link and says so', async () => {
		expect(await resend('ada@example.com')).toMatchObject({
			kind: 'redirect',
			location: '/verify?sent=1'
		});
		expect(JSON.parse(server.requests.at(-1)!.body)).toEqual({ email: 'ada@example.com' });
	});

	it("shows the API's reason when it refuses", async () => {
		expect(await resend('off@example.com')).toMatchObject({
			kind: 'failure',
			status: 404,
			data: { values: { email: 'off@example.com' }, errors: { fields: {}, form: [OFF] } }
		});
	});
});
