// A real HTTP server on 127.0.0.1 for tests of code that calls the API: no
// mocked fetch, the requests go over a socket like in production.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { User } from '$lib/types';

export interface RecordedRequest {
	method: string;
	url: string;
	headers: IncomingMessage['headers'];
	body: string;
}

export type Route = (request: RecordedRequest, response: ServerResponse) => void;

export interface TestServer {
	url: string;
	requests: RecordedRequest[];
	close(): Promise<void>;
}

/** Starts a server on a free port; `routes` maps "METHOD /path?query" to a handler. */
export async function startServer(routes: Record<string, Route>): Promise<TestServer> {
	const requests: RecordedRequest[] = [];
	const server = createServer((req, res) => {
		const chunks: Buffer[] = [];
		req.on('data', (chunk: Buffer) => chunks.push(chunk));
		req.on('end', () => {
			const recorded: RecordedRequest = {
				method: req.method ?? '',
				url: req.url ?? '',
				headers: req.headers,
				body: Buffer.concat(chunks).toString('utf8')
			};
			requests.push(recorded);
			const route = routes[`${recorded.method} ${recorded.url}`];
			if (route) route(recorded, res);
			else json(res, 404, { detail: 'Not found.' });
		});
	});
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	const { port } = server.address() as AddressInfo;
	return {
		url: `http://127.0.0.1:${port}`,
		requests,
		close: () =>
			new Promise<void>((resolve, reject) => {
				server.closeAllConnections();
				server.close((error) => (error ? reject(error) : resolve()));
			})
	};
}

export function json(response: ServerResponse, status: number, body: unknown): void {
	response.writeHead(status, { 'content-type': 'application/json' });
	response.end(JSON.stringify(body));
}

/** A port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
	const server = createServer();
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	const { port } = server.address() as AddressInfo;
	await new Promise<void>((resolve) => server.close(() => resolve()));
	return port;
}

/** The API's user object for a plain (non-staff) user, as tests expect it back. */
export const ada: User = {
	id: 1,
	username: 'ada',
	email: 'ada@example.com',
	email_verified: true,
	is_staff: false,
	date_joined: '2025-01-01T00:00:00Z'
};
