/**
 * ferry.v1.MessageService: Publish, the Consume stream, and the unary consumer calls (Pull, Ack,
 * Nack, Reject, Touch, CloseConsumer) for clients that cannot stream. Semantics are the broker's:
 * a publish answers when BrokerApi.publish resolves (after fdatasync for `always` topics), and
 * deliveries, credit, redelivery and dead letters are the broker subscription's.
 */
import type { IncomingMessage } from 'node:http';
import type { ServiceImpl } from '@connectrpc/connect';
import type { Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import { FerryError } from '../../errors.js';
import type { BrokerApi, PublishResult } from '../../broker/types.js';
import type { MessageService, PublishMessage } from '../../generated/ferry/v1/messages_pb.js';
import { callRequest } from './call-request.js';
import { ConsumeSession } from './consume-session.js';
import type { ConsumerRegistry } from './consumers.js';
import { deliveryToProto, publishMessageFromProto, publishResultToProto, requireField, subscribeOptionsFromProto } from './convert.js';
import {
  CONSUMERS_MAX,
  PULL_IDLE_TIMEOUT_MS_DEFAULT,
  PULL_IDLE_TIMEOUT_MS_MAX,
  PULL_IDLE_TIMEOUT_MS_MIN,
  PULL_MESSAGES_DEFAULT,
  PULL_MESSAGES_MAX,
  PULL_WAIT_MS_MAX,
} from './limits.js';
import { PullConsumer } from './pull-consumer.js';
import { applySettles, checkSettleBatch, type SettleBatch } from './settle.js';

export interface MessageServiceDeps {
  /** The broker as the caller of the request may use it. */
  broker: (req: IncomingMessage) => BrokerApi;
  registry: ConsumerRegistry;
  clock: Clock;
  logger: Logger;
}

/**
 * Publish, whichever way its request was decoded (by connect, or by the fast path of
 * fast-publish.ts): the fields checked (a refusal is thrown at once) and the messages handed to
 * the broker.
 */
export function startPublish(broker: BrokerApi, request: { topic: string; messages: readonly PublishMessage[] }): Promise<PublishResult[]> {
  const topic = requireField(request.topic, 'topic');
  if (request.messages.length === 0) throw new FerryError('INVALID_ARGUMENT', 'messages: publish at least one message');
  return broker.publish(topic, request.messages.map(publishMessageFromProto));
}

/** startPublish's results, and `synced` when every one was fdatasynced. */
export async function publishMessages(broker: BrokerApi, request: { topic: string; messages: readonly PublishMessage[] }): Promise<{ results: PublishResult[]; synced: boolean }> {
  const results = await startPublish(broker, request);
  return { results, synced: allSynced(results) };
}

/** Whether every result was fdatasynced: a PublishResponse's `synced`. */
export function allSynced(results: readonly PublishResult[]): boolean {
  for (const result of results) if (result.durability !== 'synced') return false;
  return true;
}

const NO_SETTLES: SettleBatch = { acks: [], nacks: [], rejects: [], touches: [] };

function checkCapacity(registry: ConsumerRegistry): void {
  if (registry.size >= CONSUMERS_MAX) {
    throw new FerryError('TOO_MANY_SUBSCRIPTIONS', `at most ${CONSUMERS_MAX} consumers may be open at once over gRPC and HTTP`);
  }
}

/** A Consume stream's session for `req`'s caller, whichever way its call came (connect, or fast-consume.ts); refused past CONSUMERS_MAX. */
export function openConsumeSession(deps: Pick<MessageServiceDeps, 'broker' | 'registry' | 'logger'>, req: IncomingMessage): ConsumeSession {
  checkCapacity(deps.registry);
  return new ConsumeSession({ broker: deps.broker(req), registry: deps.registry, logger: deps.logger });
}

export function messageService(deps: MessageServiceDeps): ServiceImpl<typeof MessageService> {
  const { registry, logger } = deps;


  const settle = async (consumerId: string, batch: SettleBatch) => {
    const { subscription } = registry.lookup(consumerId);
    checkSettleBatch(batch);
    return { failures: await applySettles(subscription, batch, logger) };
  };

  return {
    async publish(request, context) {
      const { results, synced } = await publishMessages(deps.broker(callRequest(context)), request);
      return { results: results.map(publishResultToProto), synced };
    },

    async *consume(requests, context) {
      const session = openConsumeSession(deps, callRequest(context));
      for await (const output of session.run(requests, context.signal)) {
        yield output.deliveries === undefined ? output.response : { messages: output.deliveries.map(deliveryToProto) };
      }
    },

    async pull(request, context) {
      const maxMessages = request.maxMessages === 0 ? PULL_MESSAGES_DEFAULT : request.maxMessages;
      if (maxMessages > PULL_MESSAGES_MAX) throw new FerryError('INVALID_ARGUMENT', `max_messages must be at most ${PULL_MESSAGES_MAX}`);
      if (request.waitMs > PULL_WAIT_MS_MAX) throw new FerryError('INVALID_ARGUMENT', `wait_ms must be at most ${PULL_WAIT_MS_MAX}`);
      let consumer: PullConsumer;
      if (request.consumerId !== '') {
        const found = registry.lookup(request.consumerId).consumer;
        if (!(found instanceof PullConsumer)) {
          throw new FerryError('INVALID_ARGUMENT', `consumer ${request.consumerId} is a Consume stream: its messages arrive on the stream`);
        }
        consumer = found;
      } else {
        if (request.subscription === undefined) throw new FerryError('INVALID_ARGUMENT', 'subscription is required to open a consumer (or name one in consumer_id)');
        const idleTimeoutMs = request.idleTimeoutMs === 0 ? PULL_IDLE_TIMEOUT_MS_DEFAULT : request.idleTimeoutMs;
        if (idleTimeoutMs < PULL_IDLE_TIMEOUT_MS_MIN || idleTimeoutMs > PULL_IDLE_TIMEOUT_MS_MAX) {
          throw new FerryError('INVALID_ARGUMENT', `idle_timeout_ms must be from ${PULL_IDLE_TIMEOUT_MS_MIN} to ${PULL_IDLE_TIMEOUT_MS_MAX}`);
        }
        checkCapacity(registry);
        const { topic, options } = subscribeOptionsFromProto(request.subscription, 'subscription');
        consumer = await PullConsumer.open(deps.broker(callRequest(context)), topic, options, idleTimeoutMs, deps);
      }
      const deliveries = await consumer.pull(maxMessages, request.waitMs, context.signal);
      return { consumerId: consumer.id, messages: deliveries.map(deliveryToProto) };
    },

    ack: (request) => settle(request.consumerId, { ...NO_SETTLES, acks: request.positions }),
    nack: (request) => settle(request.consumerId, { ...NO_SETTLES, nacks: request.entries }),
    reject: (request) => settle(request.consumerId, { ...NO_SETTLES, rejects: request.entries }),
    touch: (request) => settle(request.consumerId, { ...NO_SETTLES, touches: request.positions }),

    async closeConsumer(request) {
      const { consumer } = registry.lookup(request.consumerId);
      if (!(consumer instanceof PullConsumer)) {
        throw new FerryError('INVALID_ARGUMENT', `consumer ${request.consumerId} is a Consume stream: cancel the call to close it`);
      }
      await consumer.close();
      return {};
    },
  };
}
