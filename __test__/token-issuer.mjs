// A token server as Docker's token protocol has it, for the registry tests (__test__/registry.ts):
// `GET /token?service=…&scope=…` with the user's basic credentials answers `{"token": JWT}` — an
// RS256 JWT carrying its signing certificate in `x5c`, granting the scopes asked; wrong
// credentials get 401; anonymous requests get a token granting nothing. It runs in its own
// process so that a test blocked in a synchronous skopeo call can still be answered.
//
//   node token-issuer.mjs KEY.pem CERT.pem USER PASSWORD   prints the port, then serves
import crypto from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'

const [keyFile, certFile, user, password] = process.argv.slice(2)
const key = fs.readFileSync(keyFile)
const der = new crypto.X509Certificate(fs.readFileSync(certFile)).raw
const expected = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
const base64url = (data) => Buffer.from(data).toString('base64url')

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost')
  const authorization = req.headers.authorization
  if (authorization !== undefined && authorization !== expected) {
    res.writeHead(401).end()
    return
  }
  const access =
    authorization === undefined
      ? []
      : url.searchParams.getAll('scope').map((scope) => {
          const [type, name, actions] = scope.split(':')
          return { type, name, actions: actions.split(',') }
        })
  const now = Math.floor(Date.now() / 1000)
  const header = { typ: 'JWT', alg: 'RS256', x5c: [der.toString('base64')] }
  const claims = { iss: 'cstor-test-issuer', sub: user, aud: url.searchParams.get('service'), exp: now + 300, nbf: now - 10, iat: now, jti: crypto.randomUUID(), access }
  const signed = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`
  const signature = crypto.sign('sha256', Buffer.from(signed), key)
  res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ token: `${signed}.${base64url(signature)}` }))
})
server.listen(0, '127.0.0.1', () => console.log(server.address().port))
