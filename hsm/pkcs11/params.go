package pkcs11

import (
	"encoding/binary"
	"runtime"
	"unsafe"

	p11 "github.com/miekg/pkcs11"
)

// Mechanism parameters that miekg/pkcs11 has no type for. miekg/pkcs11
// copies a []byte parameter into C memory as it is, so these build the C
// structure's bytes here: a structure that points at data holds the
// address of Go memory, which the caller pins with a runtime.Pinner until
// the call returns (the cgo rules allow C memory to hold pinned Go
// pointers).
//
// Layout (PKCS#11 v2.40 pkcs11t.h): CK_ULONG is a C unsigned long, as wide
// as a pointer on Unix (ILP32 and LP64) and 4 bytes on Windows, where
// Cryptoki structures are packed to 1 byte; elsewhere they have natural
// alignment, which needs no padding here because every field before a
// pointer is a multiple of 8 bytes long.
var (
	ptrSize   = int(unsafe.Sizeof(uintptr(0)))
	ulongSize = func() int {
		if runtime.GOOS == "windows" {
			return 4
		}
		return ptrSize
	}()
)

// putUint writes v in the native byte order in n bytes.
func putUint(b []byte, n int, v uint64) {
	if n == 4 {
		binary.NativeEndian.PutUint32(b, uint32(v))
		return
	}
	binary.NativeEndian.PutUint64(b, v)
}

// appendPtrLen appends the fields { CK_BYTE_PTR pData; CK_ULONG ulLen }
// for data, which it pins with pin. data must not be empty.
func appendPtrLen(dst []byte, pin *runtime.Pinner, data []byte) []byte {
	pin.Pin(&data[0])
	off := len(dst)
	dst = append(dst, make([]byte, ptrSize+ulongSize)...)
	putUint(dst[off:], ptrSize, uint64(uintptr(unsafe.Pointer(&data[0]))))
	putUint(dst[off+ptrSize:], ulongSize, uint64(len(data)))
	return dst
}

// encryptDataMech returns the mechanism for CKM_DES3_ECB_ENCRYPT_DATA or
// CKM_AES_ECB_ENCRYPT_DATA (PKCS#11 v2.40 Current Mechanisms 2.43.x):
// its parameter is CK_KEY_DERIVATION_STRING_DATA { pData, ulLen }, and the
// derived key's value is the ECB encryption of data under the base key,
// truncated to the new key's length.
func encryptDataMech(mech uint, pin *runtime.Pinner, data []byte) []*p11.Mechanism {
	return []*p11.Mechanism{p11.NewMechanism(mech, appendPtrLen(nil, pin, data))}
}

// cbcEncryptDataMech returns the mechanism for CKM_DES3_CBC_ENCRYPT_DATA
// (iv of 8 bytes: CK_DES_CBC_ENCRYPT_DATA_PARAMS) or
// CKM_AES_CBC_ENCRYPT_DATA (iv of 16: CK_AES_CBC_ENCRYPT_DATA_PARAMS):
// { CK_BYTE iv[n]; CK_BYTE_PTR pData; CK_ULONG length }.
func cbcEncryptDataMech(mech uint, pin *runtime.Pinner, iv, data []byte) []*p11.Mechanism {
	b := make([]byte, 0, len(iv)+ptrSize+ulongSize)
	b = append(b, iv...)
	return []*p11.Mechanism{p11.NewMechanism(mech, appendPtrLen(b, pin, data))}
}

// mech returns a one-mechanism list, as miekg/pkcs11 takes them.
func mech(m uint, param []byte) []*p11.Mechanism {
	if param == nil {
		return []*p11.Mechanism{p11.NewMechanism(m, nil)}
	}
	return []*p11.Mechanism{p11.NewMechanism(m, param)}
}
