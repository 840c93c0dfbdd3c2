// Every request gets an id that ties together its log line, the API calls it
// makes (sent as X-Request-ID) and its error report, and is returned to the
// browser in the response's X-Request-ID header.

/** What an id taken from the proxy may look like: a UUID passes, a log-injection attempt does not. */
const WELL_FORMED = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The id the proxy in front of this server set in `header` (REQUEST_ID_HEADER,
 * e.g. `x-request-id`) when there is one and it is well-formed; a new UUID
 * otherwise. Without `header`, a client's X-Request-ID is never trusted.
 */
export function requestIdOf(headers: Headers, header: string | undefined): string {
	const given = header ? headers.get(header) : null;
	return given && WELL_FORMED.test(given) ? given : crypto.randomUUID();
}
