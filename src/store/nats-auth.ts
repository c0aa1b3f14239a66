import { nkeys } from '@nats-io/transport-node';
import { STREAMS, agentConsumerName, subjects } from '../protocol';

/** An agent and the nodes it serves. */
export interface AgentIdentity {
  agentId: string;
  nodeIds: string[];
}

/** A generated NATS user: its public key goes into the server's config, its seed to whoever connects as it. */
export interface GeneratedUser {
  name: string;
  publicKey: string;
  seed: string;
}

/** The inbox prefix of an agent's connection: replies to its requests arrive only there. */
export function agentInboxPrefix(agentId: string): string {
  return `_INBOX_${agentId}`;
}

/**
 * What an agent may do on NATS, and nothing more: publish the heartbeats, status reports and registrations
 * of its own nodes, pull and acknowledge work from its own durable consumer, answer log requests for its
 * nodes, and receive replies on its own inbox. It cannot publish for another node, read another agent's
 * assignments, or read the job log.
 */
export function agentPermissions(agent: AgentIdentity): { publish: { allow: string[] }; subscribe: { allow: string[] }; allow_responses: boolean } {
  const consumer = agentConsumerName(agent.agentId);
  return {
    publish: {
      allow: [
        ...agent.nodeIds.flatMap((n) => [subjects.heartbeat(n), subjects.status(n), subjects.register(n)]),
        `$JS.API.CONSUMER.MSG.NEXT.${STREAMS.assign}.${consumer}`,
        `$JS.API.CONSUMER.INFO.${STREAMS.assign}.${consumer}`,
        `$JS.ACK.${STREAMS.assign}.${consumer}.>`,
      ],
    },
    subscribe: { allow: [...agent.nodeIds.map((n) => subjects.log(n)), `${agentInboxPrefix(agent.agentId)}.>`] },
    // Lets the agent answer the scheduler's log requests on their reply subjects, and only those.
    allow_responses: true,
  };
}

/**
 * An `authorization` block for nats-server with one nkey user for the scheduler (everything) and one per
 * agent (its own subjects only). Tenants get no NATS user at all: they use the HTTP API.
 */
export function generateNatsAuthorization(agents: readonly AgentIdentity[]): { config: string; users: GeneratedUser[] } {
  const users: GeneratedUser[] = [];
  const entries: string[] = [];
  const make = (name: string) => {
    const kp = nkeys.createUser();
    const user = { name, publicKey: kp.getPublicKey(), seed: new TextDecoder().decode(kp.getSeed()) };
    users.push(user);
    return user;
  };
  const scheduler = make('scheduler');
  entries.push(`    # the scheduler: streams, consumers, KV, every subject\n    { nkey: ${scheduler.publicKey}, permissions: { publish: ">", subscribe: ">" } }`);
  for (const agent of agents) {
    const user = make(`agent-${agent.agentId}`);
    entries.push(`    # agent ${agent.agentId}: nodes ${agent.nodeIds.join(', ')}\n    { nkey: ${user.publicKey}, permissions: ${JSON.stringify(agentPermissions(agent))} }`);
  }
  return { config: `authorization {\n  users: [\n${entries.join(',\n')}\n  ]\n}\n`, users };
}
