package callback

import "crypto/cipher"

func cbcEncrypt(c *Crypter, dst, src []byte) {
	cipher.NewCBCEncrypter(c.block, c.iv[:]).CryptBlocks(dst, src)
}
