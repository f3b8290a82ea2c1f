// Compile-time checks of the scalar mapping: tsc fails if codegen's types drift.
import type { CreatePersonaMutation, PersonaRevisionsQuery } from "./gql/graphql";
import type { JsonValue } from "./json";

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;

type Created = CreatePersonaMutation["createPersona"];
type Revision = PersonaRevisionsQuery["personaRevisions"]["nodes"][number];

export type Checks = [
  Expect<Equal<Created["tags"], Array<string>>>,
  Expect<Equal<Created["createdAt"], string>>,
  Expect<Equal<Created["metadata"], JsonValue | null>>,
  Expect<Equal<Created["version"], number>>,
  Expect<Equal<Revision["operation"], "ADD_TAGS" | "CREATE" | "DELETE" | "PATCH" | "REMOVE_TAGS" | "RESTORE" | "SET_METADATA" | "UNSET_METADATA" | "UPDATE">>,
];
