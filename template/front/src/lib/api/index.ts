// The API's shapes, generated from its OpenAPI schema: openapi.json is
// /api/schema/ committed, schema.d.ts is `npm run gen:api` of it (both
// rewritten by `make api-types` after a change to the backend). Types only.
import type { components } from './schema';

type Schemas = components['schemas'];

export type User = Schemas['Usuario'];
/** GET /api/health/: 200 `ok`, 503 `unavailable`; staff tokens get more keys. */
export type Health = Schemas['Health'];
export type SignupRequest = Schemas['SignupRequest'];
export type LoginRequest = Schemas['LoginRequest'];
/** POST /api/auth/login/, 200. */
export type LoginResponse = Schemas['Token'];
/** GET /api/users/?page=N: DRF's page-number pagination. */
export type UserPage = Schemas['PaginatedUsuarioList'];
/** `{"detail": "..."}`: what an account action says when it succeeds. */
export type Detail = Schemas['Detail'];
/** POST /api/auth/email/change/, 200. */
export type EmailChangeResponse = Schemas['EmailChangeResponse'];
/** `{"detail": "..."}`: the body of every error but a 400. */
export type ErrorBody = Schemas['Error'];
/** A 400's body: messages per field (and `non_field_errors`). */
export type ValidationErrorBody = Schemas['ValidationError'];
