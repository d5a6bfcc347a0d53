'use strict'
// examples/node runs as a test: the listener prints "start listening channel 'events'" and each event's JSON as
// the notifier sends them, and both exit 0.

const test = require('node:test')
const assert = require('node:assert')
const path = require('node:path')
const { REPO, queueDir, run, nodePath } = require('./helpers.js')

const EXAMPLES = path.join(REPO, 'examples', 'node')

test('examples/node: listener.js hears every event notifier.js sends', async (t) => {
  const env = { ...process.env, HARK_DIR: queueDir(t), NODE_PATH: nodePath() }
  const node = (script, args) => run(t, process.execPath, [path.join(EXAMPLES, script), ...args], { env, cwd: EXAMPLES, deadlineMs: 30000 })
  const listener = node('listener.js', ['--count', '3'])
  await listener.waitLine((l) => l === 'start listening channel \'events\'')
  const notifier = node('notifier.js', ['3'])
  const n = await notifier.exited
  assert.strictEqual(n.code, 0, n.stderr)
  assert.strictEqual(notifier.lines.length, 3)
  const l = await listener.exited
  assert.strictEqual(l.code, 0, l.stderr)

  // Each event is printed as indented JSON: "heard {" … "}, from channel: events".
  const text = listener.lines.slice(1).join('\n')
  const heard = [...text.matchAll(/^heard ([\s\S]*?), from channel: (\w+)$/gm)]
  assert.strictEqual(heard.length, 3, text)
  heard.forEach((m, i) => {
    assert.strictEqual(m[2], 'events')
    const event = JSON.parse(m[1])
    assert.deepStrictEqual(event, { table: 'orders', action: 'INSERT', data: { id: i + 1, email: 'test@example.com', total: 10000 * (i + 1) } })
    assert.strictEqual(notifier.lines[i], `notified events: ${JSON.stringify(event)}`)
  })
})

test('examples/node: the listener ends cleanly on Ctrl-C (SIGINT)', async (t) => {
  const env = { ...process.env, HARK_DIR: queueDir(t), NODE_PATH: nodePath() }
  const listener = run(t, process.execPath, [path.join(EXAMPLES, 'listener.js')], { env, deadlineMs: 20000 })
  await listener.waitLine((l) => l.startsWith('start listening'))
  listener.child.kill('SIGINT')
  const { code, signal, stderr } = await listener.exited
  assert.strictEqual(signal, null, stderr)
  assert.strictEqual(code, 0, stderr)
})
