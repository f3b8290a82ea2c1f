// The operations this client sends. Codegen turns each into a typed document in src/gql/.
import { graphql } from "./gql";

export const CreatePersona = graphql(`
  mutation CreatePersona($input: CreatePersonaInput!) {
    createPersona(input: $input) {
      id
      name
      version
      tags
      metadata
      createdAt
    }
  }
`);

export const PersonasByMetadata = graphql(`
  query PersonasByMetadata($filter: [MetadataFilter!], $first: Int, $after: String) {
    personas(metadataFilter: $filter, first: $first, after: $after) {
      totalCount
      nodes {
        id
        name
        version
        tags
        metadata
        updatedAt
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

export const PersonaRevisions = graphql(`
  query PersonaRevisions($id: ID!, $first: Int, $after: String) {
    personaRevisions(id: $id, first: $first, after: $after) {
      nodes {
        version
        operation
        actor
        metadata
        createdAt
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

export const ProductionVersion = graphql(`
  query ProductionVersion($id: ID!, $label: String!) {
    personaRevision(id: $id, label: $label) {
      version
      content
      metadata
      labels
    }
  }
`);

export const Releases = graphql(`
  query Releases($label: String!, $filter: [MetadataFilter!], $first: Int, $after: String) {
    personaReleases(label: $label, metadataFilter: $filter, first: $first, after: $after) {
      totalCount
      edges {
        cursor
        node {
          personaId
          version
          name
          metadata
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

export const MoveLabel = graphql(`
  mutation MoveLabel($id: ID!, $label: String!, $version: Int!, $from: Int, $key: String) {
    setPersonaLabel(
      id: $id
      label: $label
      version: $version
      fromVersion: $from
      idempotencyKey: $key
    ) {
      name
      version
      setBy
      setAt
    }
  }
`);
