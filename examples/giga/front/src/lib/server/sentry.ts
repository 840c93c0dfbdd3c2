// Error reports to Sentry, off unless SENTRY_DSN is set: only then is the SDK
// imported at all. Reports carry the request's id, route and user id, and none
// of the request's secrets: cookies, credentials, query strings, bodies.
import type { Breadcrumb, ErrorEvent } from '@sentry/node';

let sdk: typeof import('@sentry/node') | null = null;

/** The request headers a report may carry; all others (Authorization, Cookie...) are dropped. */
export const SAFE_HEADERS = [
	'accept',
	'accept-language',
	'content-length',
	'content-type',
	'host',
	'user-agent',
	'x-request-id'
];

export async function initSentry(dsn: string, environment: string | undefined): Promise<void> {
	sdk = await import('@sentry/node');
	sdk.init({
		dsn,
		environment,
		// Collect no personal data in the first place; beforeSend checks what comes anyway.
		dataCollection: {
			userInfo: false,
			cookies: false,
			httpHeaders: { request: { allow: SAFE_HEADERS }, response: false },
			httpBodies: [],
			urlQueryParams: false
		},
		beforeSend: scrub,
		beforeBreadcrumb: scrubBreadcrumb
	});
}

/** Whether the SDK was imported (SENTRY_DSN was set at start-up). */
export function sentryLoaded(): boolean {
	return sdk !== null;
}

export interface ErrorContext {
	requestId: string;
	userId: number | null;
	/** The route's id, null when no route matched. */
	route: string | null;
	method: string;
	/** Without query string or secret route parameters (see loggedPath). */
	url: string;
	headers: Headers;
}

/** Reports an unexpected error, if Sentry is on. */
export function captureError(error: unknown, context: ErrorContext): void {
	const Sentry = sdk;
	if (!Sentry) return;
	const route = context.route ?? 'unmatched';
	Sentry.withScope((scope) => {
		scope.setTag('request_id', context.requestId);
		scope.setTag('route', route);
		scope.setTransactionName(`${context.method} ${route}`);
		if (context.userId !== null) scope.setUser({ id: String(context.userId) });
		// The request, as the SDK's own HTTP integration records it; scrub() keeps the safe parts.
		scope.setSDKProcessingMetadata({
			normalizedRequest: {
				method: context.method,
				url: context.url,
				headers: Object.fromEntries(context.headers)
			}
		});
		Sentry.captureException(error, { mechanism: { type: 'sveltekit', handled: false } });
	});
}

/** Waits until queued reports are sent (or `timeoutMs` passed). */
export async function flushSentry(timeoutMs = 2000): Promise<boolean> {
	return sdk ? sdk.flush(timeoutMs) : true;
}

/** The last word on what leaves for Sentry (beforeSend). */
export function scrub(event: ErrorEvent): ErrorEvent {
	if (event.request) {
		const { method, url, headers = {} } = event.request;
		event.request = {
			method,
			url: url && withoutQuery(url),
			headers: Object.fromEntries(
				Object.entries(headers).filter(([name]) => SAFE_HEADERS.includes(name.toLowerCase()))
			)
		};
	}
	if (event.user) event.user = event.user.id === undefined ? undefined : { id: event.user.id };
	event.breadcrumbs = event.breadcrumbs?.map(scrubBreadcrumb);
	return event;
}

/** Outgoing calls' URLs without their query strings. */
export function scrubBreadcrumb(breadcrumb: Breadcrumb): Breadcrumb {
	if (!breadcrumb.data) return breadcrumb;
	const data = { ...breadcrumb.data };
	delete data['http.query'];
	delete data['http.fragment'];
	if (typeof data.url === 'string') data.url = withoutQuery(data.url);
	return { ...breadcrumb, data };
}

function withoutQuery(url: string): string {
	return url.split(/[?#]/)[0];
}
