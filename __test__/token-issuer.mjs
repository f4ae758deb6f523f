// A token server as Docker's token protocol has it, for the registry tests (__test__/registry.ts):
// `GET /token?service=…&scope=…` with the user's basic credentials answers `{"token": JWT}` — an
// RS256 JWT carrying its signing certificate in `x5c`, granting the scopes asked; wrong
// credentials get 401; anonymous requests get a token granting nothing. `POST /token` with an
// OAuth2 form (`grant_type=refresh_token`, `refresh_token=PASSWORD`: the identity token a
// credential helper hands out as user `<token>`) answers `{"access_token": JWT}` for the user.
// It runs in its own process so that a test blocked in a synchronous skopeo call can still be
// answered.
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

/** A JWT granting `scopes` (`repository:NAME:ACTIONS`) for `service`. */
function token(service, scopes) {
  const access = scopes.map((scope) => {
    const [type, name, actions] = scope.split(':')
    return { type, name, actions: actions.split(',') }
  })
  const now = Math.floor(Date.now() / 1000)
  const header = { typ: 'JWT', alg: 'RS256', x5c: [der.toString('base64')] }
  const claims = { iss: 'cstor-test-issuer', sub: user, aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: crypto.randomUUID(), access }
  const signed = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`
  const signature = crypto.sign('sha256', Buffer.from(signed), key)
  return `${signed}.${base64url(signature)}`
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost')
  if (req.method === 'POST') {
    let body = ''
    req.on('data', (chunk) => (body += chunk))
    req.on('end', () => {
      const form = new URLSearchParams(body)
      if (form.get('grant_type') !== 'refresh_token' || form.get('refresh_token') !== password) {
        res.writeHead(401).end()
        return
      }
      const granted = token(form.get('service'), form.getAll('scope'))
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ access_token: granted }))
    })
    return
  }
  const authorization = req.headers.authorization
  if (authorization !== undefined && authorization !== expected) {
    res.writeHead(401).end()
    return
  }
  const scopes = authorization === undefined ? [] : url.searchParams.getAll('scope')
  res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ token: token(url.searchParams.get('service'), scopes) }))
})
server.listen(0, '127.0.0.1', () => console.log(server.address().port))
