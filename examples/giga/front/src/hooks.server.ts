import type { Handle, HandleServerError, RequestEvent, ServerInit } from '@sveltejs/kit';
import { dev } from '$app/environment';
import { env } from '$env/dynamic/private';
import { createApiClient } from '$lib/server/api';
import { log, loggedPath, routeConsoleToLog } from '$lib/server/log';
import { observeRequest, startMetricsServer } from '$lib/server/metrics';
import { requestIdOf } from '$lib/server/request-id';
import { captureError, initSentry } from '$lib/server/sentry';
import { clearSession, SESSION_COOKIE } from '$lib/server/session';
import type { User } from '$lib/types';

/**
 * Sent with every response SvelteKit renders: pages, endpoints, errors and
 * redirects. The Content-Security-Policy itself comes from `csp` in
 * vite.config.ts, which adds the nonces of SvelteKit's inline scripts.
 */
const SECURITY_HEADERS = {
	'X-Content-Type-Options': 'nosniff',
	'Referrer-Policy': 'strict-origin-when-cross-origin',
	// For browsers without CSP's frame-ancestors.
	'X-Frame-Options': 'DENY'
} as const;

/** Once, before the first request: the metrics server and Sentry, when configured. */
export const init: ServerInit = async () => {
	if (!dev) routeConsoleToLog();
	if (env.METRICS_PORT) {
		const port = Number(env.METRICS_PORT);
		if (!Number.isInteger(port) || port < 1 || port > 65535) {
			throw new Error(`METRICS_PORT is not a port number: ${JSON.stringify(env.METRICS_PORT)}`);
		}
		const host = env.METRICS_HOST || '0.0.0.0';
		await startMetricsServer(port, host);
		log.info('metrics_server_started', { host, port });
	}
	if (env.SENTRY_DSN) {
		await initSentry(env.SENTRY_DSN, env.SENTRY_ENVIRONMENT || undefined);
		log.info('sentry_enabled', { environment: env.SENTRY_ENVIRONMENT || null });
	}
};

/**
 * Gives the request its id, resolves the current user from the session cookie,
 * then logs and counts the answer.
 */
export const handle: Handle = async ({ event, resolve }) => {
	const started = performance.now();
	const requestId = requestIdOf(event.request.headers, env.REQUEST_ID_HEADER);
	event.locals.requestId = requestId;
	const token = event.cookies.get(SESSION_COOKIE) ?? null;
	event.locals.api = createApiClient({
		baseUrl: env.INTERNAL_API_URL,
		token,
		clientAddress: event.getClientAddress(),
		requestId
	});
	event.locals.user = null;
	event.locals.apiUnavailable = false;

	if (token) {
		const me = await event.locals.api.get<User>('/api/auth/me/');
		if (me.ok) {
			event.locals.user = me.data;
		} else if (me.status === 401) {
			// Expired, logged out elsewhere, or revoked: forget it.
			clearSession(event.cookies);
			event.locals.api = event.locals.api.withToken(null);
		} else {
			// Down or failing: we cannot tell who this is; keep the cookie.
			event.locals.apiUnavailable = true;
			log.error('api_call_failed', {
				request_id: requestId,
				call: 'GET /api/auth/me/',
				detail: me.detail ?? `HTTP ${me.status}`
			});
		}
	}

	// A hook that throws still gets its line, as the 500 SvelteKit answers.
	let status = 500;
	try {
		const response = await resolve(event);
		status = response.status;
		for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
			response.headers.set(name, value);
		}
		response.headers.set('X-Request-ID', requestId);
		return response;
	} finally {
		logRequest(event, status, performance.now() - started);
	}
};

function logRequest(event: RequestEvent, status: number, ms: number): void {
	observeRequest(event.request.method, event.route.id, status, ms / 1000);
	const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info';
	log[level]('request', {
		request_id: event.locals.requestId,
		method: event.request.method,
		path: loggedPath(event),
		status,
		duration_ms: Math.round(ms * 10) / 10,
		user_id: event.locals.user?.id ?? null
	});
}

/**
 * Unexpected errors (not `error(...)`): logged, reported to Sentry when it is
 * on, and shown with the request's id only, so that people can quote it.
 */
export const handleError: HandleServerError = ({ error, event, status, message }) => {
	const requestId = event.locals.requestId;
	// Paths no route matches come here too, as 404s: those are not bugs.
	if (status >= 500) {
		log.error('unexpected_error', {
			request_id: requestId,
			path: loggedPath(event),
			error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
			stack: error instanceof Error ? error.stack : undefined
		});
		captureError(error, {
			requestId,
			userId: event.locals.user?.id ?? null,
			route: event.route.id,
			method: event.request.method,
			url: `${event.url.origin}${loggedPath(event)}`,
			headers: event.request.headers
		});
	}
	return { message, requestId };
};
