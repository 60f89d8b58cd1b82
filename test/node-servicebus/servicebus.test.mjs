// The real @azure/service-bus, unmodified, against tenantbridge's AMQP
// front-end. internal/server/node_servicebus_test.go starts the server and
// runs `node --test` here with:
//
//   TB_SB_FQDN               the namespace's name, e.g. orders-bus.servicebus.windows.net
//   TB_SB_QUEUE              a queue in it
//   TB_SB_SESSION_QUEUE      a queue in it that requires sessions
//   TB_SB_CONNECTION_STRING  a connection string from ARM's listKeys
//   TB_SB_AMQPS              the AMQPS listener, host:port
//   TB_TENANT_ID, TB_CLIENT_ID, TB_CLIENT_SECRET
//                            a principal with Azure Service Bus Data Owner on the namespace
//   HTTPS_PROXY              tenantbridge's HTTPS proxy (serve --proxy-listen)
//   NODE_EXTRA_CA_CERTS      tenantbridge's CA certificate
//
// Two ways in, as programs reach Service Bus: AMQP over WebSockets on 443
// through the HTTPS proxy (webSocketOptions with an HTTPS proxy agent), and
// AMQPS to the listener with customEndpointAddress. Each with the
// connection string (SAS on $cbs) and with an Entra credential (a JWT on
// $cbs). Each way also accepts sessions: named and next available, in
// order, with session state and lock renewal.

import { test } from "node:test";
import assert from "node:assert/strict";
import { ServiceBusClient } from "@azure/service-bus";
import { ClientSecretCredential } from "@azure/identity";
import { HttpsProxyAgent } from "https-proxy-agent";
import WebSocket from "ws";

function env(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set: run this through internal/server/node_servicebus_test.go`);
  }
  return v;
}

const fqdn = env("TB_SB_FQDN");
const queue = env("TB_SB_QUEUE");
const sessionQueue = env("TB_SB_SESSION_QUEUE");
const retryOptions = { maxRetries: 1, retryDelayInMs: 100, timeoutInMs: 20000 };

function webSocketOptions() {
  return {
    webSocket: WebSocket,
    webSocketConstructorOptions: { agent: new HttpsProxyAgent(env("HTTPS_PROXY")) },
  };
}

function credential() {
  // The default authority, login.microsoftonline.com, reached through
  // HTTPS_PROXY like every request of @azure/identity.
  return new ClientSecretCredential(env("TB_TENANT_ID"), env("TB_CLIENT_ID"), env("TB_CLIENT_SECRET"));
}

const ways = {
  "websockets through the proxy, connection string": () =>
    new ServiceBusClient(env("TB_SB_CONNECTION_STRING"), { webSocketOptions: webSocketOptions(), retryOptions }),
  "websockets through the proxy, Entra credential": () =>
    new ServiceBusClient(fqdn, credential(), { webSocketOptions: webSocketOptions(), retryOptions }),
  "amqps with customEndpointAddress, connection string": () =>
    new ServiceBusClient(env("TB_SB_CONNECTION_STRING"), {
      customEndpointAddress: `amqps://${env("TB_SB_AMQPS")}`,
      retryOptions,
    }),
  "amqps with customEndpointAddress, Entra credential": () =>
    new ServiceBusClient(fqdn, credential(), {
      customEndpointAddress: `amqps://${env("TB_SB_AMQPS")}`,
      retryOptions,
    }),
};

// receiveN receives exactly n messages, in as many calls as it takes.
async function receiveN(receiver, n) {
  const out = [];
  for (let i = 0; out.length < n && i < 20; i++) {
    out.push(...(await receiver.receiveMessages(n - out.length, { maxWaitTimeInMs: 5000 })));
  }
  assert.equal(out.length, n, `received ${out.length} of ${n} messages`);
  return out;
}

for (const [name, newClient] of Object.entries(ways)) {
  test(name, { timeout: 120000 }, async () => {
    const tag = name.toLowerCase().replace(/[^a-z]+/g, "-");
    const client = newClient();
    try {
      const sender = client.createSender(queue);
      await sender.sendMessages({
        body: `one ${tag}`,
        subject: `order-${tag}`,
        applicationProperties: { n: 7, who: "alice" },
      });
      const batch = await sender.createMessageBatch();
      for (let i = 0; i < 3; i++) {
        assert.ok(batch.tryAddMessage({ body: `batch ${tag} ${i}` }), "the batch took a small message");
      }
      await sender.sendMessages(batch);

      // Peek-lock: receive, complete.
      const receiver = client.createReceiver(queue, { receiveMode: "peekLock" });
      const got = await receiveN(receiver, 4);
      assert.deepEqual(
        got.map((m) => m.body),
        [`one ${tag}`, `batch ${tag} 0`, `batch ${tag} 1`, `batch ${tag} 2`],
      );
      const first = got[0];
      assert.equal(first.subject, `order-${tag}`);
      assert.equal(first.applicationProperties.n, 7);
      assert.equal(first.applicationProperties.who, "alice");
      assert.ok(first.lockToken, "a peek-locked message has a lock token");
      assert.ok(first.lockedUntilUtc instanceof Date, "lockedUntilUtc");
      assert.ok(first.sequenceNumber !== undefined, "sequenceNumber");
      assert.ok(first.enqueuedTimeUtc instanceof Date, "enqueuedTimeUtc");
      await receiver.completeMessage(first);
      await receiver.completeMessage(got[1]);

      // Abandon: the message comes back with a higher delivery count.
      await receiver.abandonMessage(got[2]);
      const [again] = await receiveN(receiver, 1);
      assert.equal(again.body, got[2].body);
      assert.equal(again.deliveryCount, got[2].deliveryCount + 1);
      await receiver.completeMessage(again);

      // Dead-letter with a reason, read from the dead-letter sub-queue.
      await receiver.deadLetterMessage(got[3], {
        deadLetterReason: "BadOrder",
        deadLetterErrorDescription: "no such product",
      });
      const dlq = client.createReceiver(queue, { subQueueType: "deadLetter" });
      const [dead] = await receiveN(dlq, 1);
      assert.equal(dead.body, got[3].body);
      assert.equal(dead.deadLetterReason, "BadOrder");
      assert.equal(dead.deadLetterErrorDescription, "no such product");
      await dlq.completeMessage(dead);
      await dlq.close();

      // Nothing is left: an empty peek, and an empty receive.
      assert.deepEqual(await receiver.peekMessages(1), []);
      assert.deepEqual(await receiver.receiveMessages(1, { maxWaitTimeInMs: 1000 }), []);
      await receiver.close();
      await sender.close();
    } finally {
      await client.close();
    }
  });

  test(`${name}: sessions`, { timeout: 120000 }, async () => {
    const tag = name.toLowerCase().replace(/[^a-z]+/g, "-");
    const client = newClient();
    try {
      const sender = client.createSender(sessionQueue);
      // A queue that requires sessions refuses a message without one.
      await assert.rejects(sender.sendMessages({ body: "no session" }));
      for (let i = 0; i < 3; i++) {
        await sender.sendMessages({ body: `${tag} a${i}`, sessionId: `${tag}-a` });
        await sender.sendMessages({ body: `${tag} b${i}`, sessionId: `${tag}-b` });
      }

      // Named: its messages only, in order.
      const a = await client.acceptSession(sessionQueue, `${tag}-a`);
      assert.equal(a.sessionId, `${tag}-a`);
      assert.ok(a.sessionLockedUntilUtc instanceof Date, "sessionLockedUntilUtc");
      const got = await receiveN(a, 3);
      assert.deepEqual(got.map((m) => m.body), [`${tag} a0`, `${tag} a1`, `${tag} a2`]);
      for (const m of got) {
        assert.equal(m.sessionId, `${tag}-a`);
        await a.completeMessage(m);
      }
      await a.setSessionState(`done with ${tag}`);
      assert.equal(String(await a.getSessionState()), `done with ${tag}`);
      const before = a.sessionLockedUntilUtc.getTime();
      await new Promise((r) => setTimeout(r, 20));
      await a.renewSessionLock();
      assert.ok(a.sessionLockedUntilUtc.getTime() > before, "the renewal moved the session lock");
      await a.setSessionState(null);
      await a.close();

      // Next available: the other session, whose messages remain.
      const b = await client.acceptNextSession(sessionQueue, { maxAutoLockRenewalDurationInMs: 0 });
      assert.equal(b.sessionId, `${tag}-b`);
      const rest = await receiveN(b, 3);
      assert.deepEqual(rest.map((m) => m.body), [`${tag} b0`, `${tag} b1`, `${tag} b2`]);
      for (const m of rest) {
        await b.completeMessage(m);
      }
      await b.close();
      await sender.close();
    } finally {
      await client.close();
    }
  });
}
