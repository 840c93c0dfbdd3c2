import { describe, expect, it } from 'vitest';
import { isHttpError, isRedirect, type Cookies } from '@sveltejs/kit';
import { loginUrl, requireUser, safeNext, setSession } from './session';
import { createApiClient } from './api';

describe('safeNext', () => {
	const here = new URL('http://localhost:3000/login?next=x');

	const onSite = [
		'/users?page=2',
		'/me',
		'/',
		'/me?x=1#y',
		'/a/b?c=d#e',
		'/a%2Fb',
		'/x?next=//y',
		'/x?next=%2F%2Fy#//z',
		'/search?q=100%25',
		'/a//b',
		'/a/.//b'
	];

	it('keeps paths on this site, query and fragment included', () => {
		for (const next of onSite.slice(0, -1)) expect(safeNext(next, here)).toBe(next);
	});

	it('resolves dot segments that stay on this site, as the browser would', () => {
		expect(safeNext('/a/./b/../c?d', here)).toBe('/a/c?d');
		expect(safeNext('/a/%2e%2E/me', here)).toBe('/me');
		expect(safeNext('/a/.//b', here)).toBe('/a//b');
	});

	it('returns the parsed form of the path, which is safe in a Location header', () => {
		expect(safeNext('/caf\u00e9?q=\u00e9 x', here)).toBe('/caf%C3%A9?q=%C3%A9%20x');
		expect(safeNext('/ /x', here)).toBe('/%20/x');
	});

	// The shapes of open redirects: what a browser resolves against this site
	// to another origin, or what breaks the redirect's header. Written as
	// url.searchParams.get('next') returns them, i.e. once decoded.
	const offSite = {
		'protocol-relative': ['//evil.example', '//evil.example/path', '///evil.example'],
		'backslashes, read as "/" by browsers': [
			'/\\evil.example',
			'\\\\evil.example',
			'/\\/evil.example',
			'/x\\..\\\\evil.example'
		],
		'control characters browsers drop (tab, CR, LF)': [
			'/\t/evil.example/',
			'/\n/evil.example',
			'/\r\n/evil.example',
			'/\t\\evil.example'
		],
		'header injection (CR/LF, NUL, DEL, C1)': [
			'/me\r\nSet-Cookie: session=attacker',
			'/me\nLocation: https://evil.example',
			'/me\u0000',
			'/me\u007f',
			'/me\u0085'
		],
		'encoded slashes, backslashes and controls': [
			'/%2F/evil.example',
			'/%2f%2fevil.example',
			'/%5Cevil.example',
			'/%5cevil.example',
			'/%09/evil.example',
			'/%0d%0a/evil.example',
			'%2F%2Fevil.example'
		],
		'absolute URLs and schemes': [
			'https://evil.example/',
			'http:evil.example',
			'javascript:alert(1)',
			'data:text/html,<script>alert(1)</script>',
			'evil.example',
			' /me',
			''
		],
		'undecodable percent-encoding': ['/%E0%A4%A', '/%'],
		// Checked before normalising, these once came out as `//evil.example`.
		'dot segments that leave "//" in front, plain or percent-encoded': [
			'/.//evil.example',
			'/..//evil.example',
			'/%2e//evil.example',
			'/%2E%2E//evil.example',
			'/.%2e//evil.example',
			'/./%2e/..//evil.example',
			'/a/../..//evil.example',
			'/a/%2e%2e//evil.example',
			'/%2e/%5C/evil.example',
			'/.\t//evil.example',
			'/%2e%2f%2fevil.example',
			'/%2e%2e%2f%2fevil.example'
		],
		'encoded more than once': [
			'/%252F/evil.example',
			'/%25252F%25252Fevil.example',
			'/%252e//evil.example',
			'/%252E%252E%252F%252Fevil.example',
			'/%255Cevil.example',
			'/%2509/evil.example',
			'/%25252F%25252Fevil.example%25'
		]
	};

	for (const [shape, values] of Object.entries(offSite)) {
		it(`refuses ${shape} and falls back`, () => {
			for (const next of values) expect(safeNext(next, here), JSON.stringify(next)).toBe('/me');
		});
	}

	it('refuses every way of spelling a dot segment before a second slash', () => {
		const roots = ['', '/a/..', '/a/%2e%2e', '/a/b/../%2E%2E', '/.', '/%2e'];
		const dots = ['.', '..', '%2e', '%2E', '%2e%2e', '.%2e', '%2E.', '%252e', '%252e%252e'];
		const gaps = ['//', '/\\', '/%2f', '%2f/', '%2F%2F', '/%5c', '%5c', '/%252f', '/%09/', '/\t/'];
		for (const root of roots) {
			for (const dot of dots) {
				for (const gap of gaps) {
					const next = `${root}/${dot}${gap}evil.example/`;
					expect(safeNext(next, here), JSON.stringify(next)).toBe('/me');
				}
			}
		}
	});

	it('refuses more layers of percent-encoding than it looks through', () => {
		let next = '/ok';
		for (let layer = 0; layer < 6; layer++) next = encodeURIComponent(next);
		expect(safeNext(`/${next}`, here)).toBe('/me');
	});

	it('only ever answers a path that stays on this site and reads back as itself', () => {
		const inputs = [...onSite, ...Object.values(offSite).flat(), '/a/b/../../c', '/%2e', '/.'];
		for (const next of inputs) {
			const answer = safeNext(next, here);
			const resolved = new URL(answer, here);
			expect(resolved.origin, JSON.stringify(next)).toBe(here.origin);
			expect(answer, JSON.stringify(next)).toMatch(/^\/(?![/\\])/);
			expect(resolved.pathname + resolved.search + resolved.hash).toBe(answer);
			expect(safeNext(answer, here)).toBe(answer);
		}
	});

	it('falls back to the given default, or /me', () => {
		expect(safeNext(null, here)).toBe('/me');
		expect(safeNext('//evil.example', here, '/')).toBe('/');
	});
});

describe('setSession', () => {
	function capture() {
		const calls: { name: string; value: string; options: Record<string, unknown> }[] = [];
		const cookies = {
			set: (name: string, value: string, options: Record<string, unknown>) =>
				calls.push({ name, value, options })
		} as unknown as Cookies;
		return { cookies, calls };
	}
	const now = Date.parse('2025-01-01T00:00:00Z');

	it('keeps the cookie as long as the token, from the API`s expiry', () => {
		const { cookies, calls } = capture();
		setSession(cookies, new URL('http://localhost/'), 'key', '2025-01-02T00:00:00.000000Z', now);
		expect(calls).toEqual([
			{
				name: 'session',
				value: 'key',
				options: {
					path: '/',
					httpOnly: true,
					sameSite: 'lax',
					secure: false,
					maxAge: 24 * 60 * 60
				}
			}
		]);
	});

	it('follows expiries with an offset, already past, or absent', () => {
		const maxAge = (expiry: string | null | undefined) => {
			const { cookies, calls } = capture();
			setSession(cookies, new URL('https://app.example/'), 'key', expiry, now);
			expect(calls[0].options.secure).toBe(true);
			return calls[0].options.maxAge;
		};
		expect(maxAge('2025-01-01T10:00:00+09:00')).toBe(3600);
		expect(maxAge('2024-12-31T00:00:00Z')).toBe(0);
		expect(maxAge(null)).toBe(7 * 24 * 60 * 60);
		expect(maxAge(undefined)).toBe(7 * 24 * 60 * 60);
		expect(maxAge('not a date')).toBe(7 * 24 * 60 * 60);
	});
});

describe('requireUser', () => {
	const api = createApiClient({ baseUrl: 'http://127.0.0.1:9' });
	const url = new URL('http://localhost/users?page=2');
	const user = {
		id: 1,
		username: 'ada',
		email: '',
		email_verified: null,
		is_staff: true,
		date_joined: '2025-01-01T00:00:00Z'
	};

	it('returns the logged-in user', () => {
		expect(requireUser({ requestId: 'r', api, user, apiUnavailable: false }, url)).toBe(user);
	});

	it('sends anonymous visitors to the login page, coming back afterwards', () => {
		expect(loginUrl(url)).toBe('/login?next=%2Fusers%3Fpage%3D2');
		try {
			requireUser({ requestId: 'r', api, user: null, apiUnavailable: false }, url);
			expect.unreachable();
		} catch (thrown) {
			expect(isRedirect(thrown) && thrown.location).toBe('/login?next=%2Fusers%3Fpage%3D2');
		}
	});

	it('answers 503 when the API could not say who this is', () => {
		try {
			requireUser({ requestId: 'r', api, user: null, apiUnavailable: true }, url);
			expect.unreachable();
		} catch (thrown) {
			expect(isHttpError(thrown, 503)).toBe(true);
		}
	});
});
