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

// Releases and labels (moving `production` or `staging` to a version) come with the labels
// feature: add their operations here once schema.graphql has them, e.g. a query of the
// persona's releases and the mutation that moves a label.
