import type { FastifyError, FastifyInstance } from 'fastify';
import {
  hasZodFastifySchemaValidationErrors,
  isResponseSerializationError,
} from 'fastify-type-provider-zod';
import type { ErrorEnvelope } from '@edge/contract';
import { isAppError } from '../errors.js';

/** Fastify's own client errors, mapped to codes of the catalog. */
const FASTIFY_CLIENT_ERRORS: Record<string, string> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'the Content-Type is not supported; send application/json',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'the body is empty but Content-Type is application/json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'the body is not valid JSON',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'the Content-Length does not match the body',
  FST_ERR_VALIDATION: 'the request failed validation',
};

function envelope(
  code: string,
  message: string,
  details?: Record<string, unknown>,
  requestId?: string,
): ErrorEnvelope {
  return {
    error: {
      code,
      message,
      ...(details !== undefined ? { details } : {}),
      ...(requestId !== undefined ? { requestId } : {}),
    },
  };
}

/**
 * Renders every error as the envelope: catalog errors as they are, validation errors as 400
 * VALIDATION_FAILED with the failing paths, and anything unexpected as a plain 500 with the
 * request id, so no internals reach the client.
 */
export function installErrorHandlers(app: FastifyInstance): void {
  app.setNotFoundHandler((request, reply) => {
    void reply
      .code(404)
      .send(
        envelope(
          'ROUTE_NOT_FOUND',
          `no route for ${request.method} ${request.url.split('?')[0]}; see /openapi.json`,
        ),
      );
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (isAppError(error)) {
      if (error.statusCode >= 500) request.log.error({ err: error }, error.message);
      void reply
        .code(error.statusCode)
        .headers(error.headers)
        .send(envelope(error.code, error.message, error.details));
      return;
    }
    if (hasZodFastifySchemaValidationErrors(error)) {
      const where = error.validationContext ?? 'request';
      const issues = error.validation.map((issue) => ({
        path: `${where}${issue.instancePath.replaceAll('/', '.')}`,
        message: issue.message ?? 'invalid',
      }));
      const first = issues[0];
      void reply
        .code(400)
        .send(
          envelope(
            'VALIDATION_FAILED',
            `invalid ${where}: ${first === undefined ? 'validation failed' : `${first.path} ${first.message}`}`,
            { issues },
          ),
        );
      return;
    }
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      const limitBytes = request.routeOptions.bodyLimit;
      void reply.code(400).send(
        envelope('BODY_TOO_LARGE', `the body exceeds the limit of ${limitBytes} bytes`, {
          limitBytes,
        }),
      );
      return;
    }
    const clientMessage = FASTIFY_CLIENT_ERRORS[error.code];
    if (clientMessage !== undefined || (error instanceof SyntaxError && error.statusCode === 400)) {
      void reply
        .code(400)
        .send(envelope('VALIDATION_FAILED', clientMessage ?? 'the body is not valid JSON'));
      return;
    }
    if (isResponseSerializationError(error)) {
      request.log.error({ err: error, issues: error.cause.issues }, 'response failed its schema');
    } else {
      request.log.error({ err: error }, 'request failed with an unexpected error');
    }
    void reply
      .code(500)
      .send(
        envelope(
          'INTERNAL',
          `internal error; quote request id ${request.id} when reporting it`,
          undefined,
          request.id,
        ),
      );
  });
}
