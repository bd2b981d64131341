// A raw HTTP/1.1 client that sends a request's body in 64 KiB pieces, each write awaited, and
// then reads the whole answer until the server closes. For servers that refuse a body before
// reading it: a server that answers and closes early makes one of the writes fail (EPIPE), which
// fetch() hits only now and then.
import { Buffer } from 'node:buffer';
import { connect } from 'node:net';

export async function slowUpload(port: number, head: string, bodyBytes: number): Promise<string> {
  const socket = connect({ host: '127.0.0.1', port });
  let answer = '';
  socket.setEncoding('latin1');
  socket.on('data', (text: string) => {
    answer += text;
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const write = (data: string | Buffer): Promise<void> =>
    new Promise((resolve, reject) => socket.write(data, (error) => (error === undefined || error === null ? resolve() : reject(error))));
  try {
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    await write(`${head}content-length: ${bodyBytes}\r\n\r\n`);
    const piece = Buffer.alloc(64 * 1024, 0x20);
    for (let sent = 0; sent < bodyBytes; sent += piece.length) await write(bodyBytes - sent < piece.length ? piece.subarray(0, bodyBytes - sent) : piece);
    await closed;
    return answer;
  } finally {
    socket.destroy();
  }
}
