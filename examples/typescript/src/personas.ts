// Typed use of the API's answers: tags are string[], timestamps strings, metadata JSON values.
import { type Client, execute } from "./client";
import type { PersonasByMetadataQuery, ReleasesQuery } from "./gql/graphql";
import { isJsonObject, type JsonValue } from "./json";
import {
  CreatePersona,
  MoveLabel,
  PersonaRevisions,
  PersonasByMetadata,
  ProductionVersion,
  Releases,
} from "./operations";

export type PersonaSummary = PersonasByMetadataQuery["personas"]["nodes"][number];

export async function createSupportAgent(client: Client): Promise<{ id: string; created: Date }> {
  const { createPersona } = await execute(client, CreatePersona, {
    input: {
      name: "Support Agent v2",
      content: "You are a helpful support agent...",
      metadata: {
        tags: ["prod", "approved"],
        version: "2.0.0",
        deployment: { environment: "production", approved_by: "team-lead@company.com" },
        performance: { avg_rating: 4.2, usage_count: 150 },
      },
    },
  });
  const tags: string[] = createPersona.tags;
  if (!tags.includes("prod")) throw new Error("the persona lost its tag");
  return { id: createPersona.id, created: new Date(createPersona.createdAt) };
}

/** Every persona in production with a tag, page by page (keyset cursors). */
export async function* productionPersonas(
  client: Client,
  tag: string,
  pageSize = 50,
): AsyncGenerator<PersonaSummary> {
  let after: string | null = null;
  do {
    const page: PersonasByMetadataQuery = await execute(client, PersonasByMetadata, {
      filter: [
        { path: "tags", value: tag },
        { path: "deployment.environment", value: "production", op: "EQ" },
      ],
      first: pageSize,
      after,
    });
    yield* page.personas.nodes;
    after = page.personas.pageInfo.hasNextPage ? page.personas.pageInfo.endCursor : null;
  } while (after !== null);
}

/** A metadata value by path, e.g. rating(persona) reads performance.avg_rating. */
export function metadataAt(metadata: JsonValue | null, path: string): JsonValue | undefined {
  let value: JsonValue | undefined = metadata ?? undefined;
  for (const segment of path.split(".")) {
    value = isJsonObject(value) ? value[segment] : undefined;
  }
  return value;
}

export function rating(persona: PersonaSummary): number | undefined {
  const value = metadataAt(persona.metadata, "performance.avg_rating");
  return typeof value === "number" ? value : undefined;
}

/** Who changed a persona, newest first. */
export async function changeLog(client: Client, id: string): Promise<string[]> {
  const { personaRevisions } = await execute(client, PersonaRevisions, { id, first: 20 });
  return personaRevisions.nodes.map(
    (revision) =>
      `v${revision.version} ${revision.operation.toLowerCase()} by ${revision.actor ?? "anonymous"}` +
      ` at ${new Date(revision.createdAt).toISOString()}`,
  );
}

/** The system prompt a service should serve: the version the `production` label points at. */
export async function productionPrompt(client: Client, id: string): Promise<string | null> {
  const { personaRevision } = await execute(client, ProductionVersion, {
    id,
    label: "production",
  });
  return personaRevision === null ? null : personaRevision.content;
}

export type Release = ReleasesQuery["personaReleases"]["edges"][number]["node"];

/** Every persona released under `label` whose released version carries `tag`. */
export async function* releasesTagged(
  client: Client,
  label: string,
  tag: string,
): AsyncGenerator<Release> {
  let after: string | null = null;
  do {
    const page: ReleasesQuery = await execute(client, Releases, {
      label,
      filter: [{ path: "tags", value: tag }],
      first: 50,
      after,
    });
    for (const edge of page.personaReleases.edges) yield edge.node;
    after = page.personaReleases.pageInfo.hasNextPage
      ? page.personaReleases.pageInfo.endCursor
      : null;
  } while (after !== null);
}

/** Roll `production` back to `version`, only if it still points at `current` (safe to retry). */
export async function rollBack(
  client: Client,
  id: string,
  version: number,
  current: number,
): Promise<number> {
  const { setPersonaLabel } = await execute(client, MoveLabel, {
    id,
    label: "production",
    version,
    from: current,
    key: `rollback-${id}-${current}-${version}`,
  });
  return setPersonaLabel.version;
}
