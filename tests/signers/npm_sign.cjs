// Signs a CloudFront URL or cookies with @aws-sdk/cloudfront-signer (an independent signer).
// Usage: node npm_sign.cjs '{"key_id", "key_file", "url", "expires", "not_before"?, "ip"?,
//         "sha256"?, "policy"? (a custom policy JSON string, signed as given), "cookies"?}'
// Prints the signed URL, or the cookies as a JSON object.
const { getSignedUrl, getSignedCookies } = require("@aws-sdk/cloudfront-signer");
const fs = require("fs");

const a = JSON.parse(process.argv[2]);
const opts = {
  keyPairId: a.key_id,
  privateKey: fs.readFileSync(a.key_file, "utf8"),
  url: a.url,
  algorithm: a.sha256 ? "SHA256" : undefined,
};
if (a.policy) {
  opts.policy = a.policy;
} else {
  opts.dateLessThan = new Date(a.expires * 1000).toISOString();
  if (a.not_before) opts.dateGreaterThan = new Date(a.not_before * 1000).toISOString();
  if (a.ip) opts.ipAddress = a.ip;
}
if (a.cookies) {
  console.log(JSON.stringify(getSignedCookies(opts)));
} else {
  console.log(getSignedUrl(opts));
}
