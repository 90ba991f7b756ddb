// Scores one run of the HTTP caching test suite (npm http-cache-tests) the way its results
// page does: a test passes when it passed and every test it depends on passed too.
//
//   node score.mjs SUITE_DIR RESULTS.json [--list]
//
// Prints "required P/N optional P/N"; --list adds one line per test that did not pass:
// kind, symbol, id and the suite's message.
import fs from 'fs'
import path from 'path'
import { pathToFileURL } from 'url'

const [suiteDir, resultsFile] = process.argv.slice(2)
const load = (rel) => import(pathToFileURL(path.resolve(suiteDir, rel)).href)
const tests = (await load('tests/index.mjs')).default
const display = await load('lib/display.mjs')
const results = JSON.parse(fs.readFileSync(resultsFile))

const tally = { required: [0, 0], optimal: [0, 0] }
const failures = []
for (const suite of tests) {
  for (const test of suite.tests) {
    const kind = test.kind || 'required'
    if (!(kind in tally)) continue
    tally[kind][1]++
    const symbol = display.determineTestResult(tests, test.id, results)[2]
    if (symbol === '✅') {
      tally[kind][0]++
    } else {
      const detail = test.browser_only ? 'browser only' : JSON.stringify(results[test.id] ?? null)
      failures.push(`${kind}\t${symbol}\t${test.id}\t${detail}`)
    }
  }
}
const [rp, rn] = tally.required
const [op, on] = tally.optimal
console.log(`required ${rp}/${rn} optional ${op}/${on}`)
if (process.argv.includes('--list')) console.log(failures.join('\n'))
