// A minimal typed GraphQL client over fetch: the document's type gives the result's.
import type { TypedDocumentString } from "./gql/graphql";

export class GraphQLRequestError extends Error {
  constructor(
    readonly errors: ReadonlyArray<{ message: string; extensions?: { code?: string } }>,
  ) {
    super(errors.map((error) => `${error.extensions?.code ?? "ERROR"}: ${error.message}`).join("; "));
  }

  get code(): string | undefined {
    return this.errors[0]?.extensions?.code;
  }
}

export interface Client {
  url: string;
  /** An API key: sent as `Authorization: Bearer <key>`. */
  apiKey?: string;
  /** Send only the document's hash, for a server that registered src/gql/persisted-documents.json
   * (PERSONAS_PERSISTED_QUERIES); otherwise the document itself. */
  persisted?: boolean;
}

export async function execute<TResult, TVariables>(
  client: Client,
  document: TypedDocumentString<TResult, TVariables>,
  ...[variables]: TVariables extends Record<string, never> ? [] : [TVariables]
): Promise<TResult> {
  const headers: Record<string, string> = {
    "Content-Type": "application/json",
    Accept: "application/graphql-response+json, application/json",
  };
  if (client.apiKey) headers.Authorization = `Bearer ${client.apiKey}`;
  const response = await fetch(client.url, {
    method: "POST",
    headers,
    body: JSON.stringify(body(client, document, variables)),
  });
  const answer = (await response.json()) as {
    data?: TResult | null;
    errors?: GraphQLRequestError["errors"];
  };
  if (answer.errors?.length) throw new GraphQLRequestError(answer.errors);
  if (answer.data == null) throw new Error(`no data in the answer (HTTP ${response.status})`);
  return answer.data;
}

function body<TResult, TVariables>(
  client: Client,
  document: TypedDocumentString<TResult, TVariables>,
  variables: TVariables | undefined,
): Record<string, unknown> {
  const hash: unknown = document.__meta__?.["hash"];
  if (client.persisted && typeof hash === "string") {
    const sha256Hash = hash.replace(/^sha256:/, "");
    return { variables, extensions: { persistedQuery: { version: 1, sha256Hash } } };
  }
  return { query: document.toString(), variables };
}
