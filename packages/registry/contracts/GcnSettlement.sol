// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC20} from "./IERC20.sol";

/// @title GcnSettlement
/// @notice Daily settlement of the gcn network (docs/settlement.md): registry
///         signers post one Merkle root per day; anyone then applies each
///         game's debit (taken from the game's deposit into the claim pool)
///         and each supplier's credit claim (paid from the pool).
/// @dev Leaves use the OpenZeppelin StandardMerkleTree layout with types
///      (uint8 kind, bytes32 id, uint256 amount): kind 0 = debit (id = game
///      key), kind 1 = credit (id = left-padded account address). Per day the
///      contract stores only the root; totals go in the DayPosted event.
///      The signer set is committed to by a hash kept in the config slot that
///      postDay reads anyway: a post names the registered signers that did not
///      sign, the others are recovered from their signatures, and the whole list
///      must hash to the commitment. The list itself lives in the code of a small
///      data contract (written once per setSigners) for the views and for
///      explaining a refused post.
contract GcnSettlement {
    // ---------------------------------------------------------------- types

    struct Game {
        address owner;
        uint256 deposit;
        uint256 owed;
    }

    // ------------------------------------------------------------ constants

    /// @notice keccak256("gcn/settlement/1"), the first field of every report digest.
    bytes32 public constant REPORT_TYPEHASH = keccak256("gcn/settlement/1");
    /// @notice The largest signer set setSigners accepts.
    uint256 public constant MAX_SIGNERS = 255;

    uint256 private constant _SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    // -------------------------------------------------------------- storage

    /// @notice The settlement token.
    IERC20 public immutable token;
    /// @notice The contract owner (manages the signer set).
    address public owner;

    /// @dev bits 0..7: signer count; 8..15: threshold; 16..255: the high 240 bits of
    ///      keccak256(abi.encodePacked(signers)), the ascending list as 32-byte words.
    uint256 private _signerConfig;
    /// @dev The data contract whose code (after a STOP byte) is the packed 20-byte signer list.
    address private _signerData;
    /// @dev bits 0..127: total paid in; 128..255: total claimed.
    uint256 private _totals;

    mapping(uint64 day => bytes32 root) private _dayRoot;
    mapping(bytes32 game => Game) private _games;
    /// @dev per account, one bit per day (256 days a word)
    mapping(address account => mapping(uint256 word => uint256 bits)) private _claimedBits;
    /// @dev per game, one bit per day (256 days a word)
    mapping(bytes32 game => mapping(uint256 word => uint256 bits)) private _debitedBits;

    // --------------------------------------------------------------- events

    event DayPosted(uint64 indexed day, bytes32 root, uint256 totalDebit, address submitter);
    event Deposited(bytes32 indexed game, address indexed from, uint256 amount);
    event Withdrawn(bytes32 indexed game, address indexed to, uint256 amount);
    event GameDebited(uint64 indexed day, bytes32 indexed game, uint256 amount, uint256 paid);
    event GameDelinquent(bytes32 indexed game, uint64 indexed day, uint256 owed);
    event GameReinstated(bytes32 indexed game);
    event Claimed(uint64 indexed day, address indexed account, uint256 amount);
    event SignersChanged(address[] signers, uint256 threshold);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    // --------------------------------------------------------------- errors

    error NotOwner();
    error NotGameOwner();
    error DayAlreadyPosted();
    error DayNotPosted();
    error NotEnoughSignatures();
    error SignersNotAscending();
    error NotASigner();
    error InvalidSignature();
    error InvalidSignerList();
    error InvalidProof();
    error AlreadyDebited();
    error AlreadyClaimed();
    error InsufficientDeposit();
    error GameIsDelinquent();
    error InsufficientPool();
    error InvalidThreshold();
    error ZeroAmount();
    error TransferFailed();
    error AmountTooLarge();

    // ---------------------------------------------------------- constructor

    constructor(IERC20 token_, address[] memory signers_, uint256 threshold_) {
        token = token_;
        owner = msg.sender;
        emit OwnershipTransferred(address(0), msg.sender);
        _setSigners(signers_, threshold_);
    }

    // ---------------------------------------------------------------- games

    /// @notice Adds `amount` to `game`'s deposit (tokens pulled from the caller, who
    ///         must have approved this contract). The first depositor becomes the
    ///         game's owner. An unpaid debt (`owed`) is repaid first, into the pool.
    function deposit(bytes32 game, uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        Game storage g = _games[game];
        if (g.owner == address(0)) g.owner = msg.sender;
        emit Deposited(game, msg.sender, amount);
        uint256 credit = amount;
        uint256 debt = g.owed;
        if (debt != 0) {
            uint256 repay = amount < debt ? amount : debt;
            unchecked {
                debt -= repay;
                credit -= repay;
            }
            g.owed = debt;
            _addPaidIn(repay);
            if (debt == 0) emit GameReinstated(game);
        }
        g.deposit += credit;
        _pull(msg.sender, amount);
    }

    /// @notice Returns `amount` of `game`'s deposit to its owner; not while the game owes.
    function withdraw(bytes32 game, uint256 amount) external {
        Game storage g = _games[game];
        if (msg.sender != g.owner) revert NotGameOwner();
        if (g.owed != 0) revert GameIsDelinquent();
        if (amount == 0) revert ZeroAmount();
        uint256 balance = g.deposit;
        if (amount > balance) revert InsufficientDeposit();
        unchecked {
            g.deposit = balance - amount;
        }
        emit Withdrawn(game, msg.sender, amount);
        _push(msg.sender, amount);
    }

    function deposits(bytes32 game) external view returns (uint256) {
        return _games[game].deposit;
    }

    function gameOwner(bytes32 game) external view returns (address) {
        return _games[game].owner;
    }

    function owed(bytes32 game) external view returns (uint256) {
        return _games[game].owed;
    }

    function delinquent(bytes32 game) external view returns (bool) {
        return _games[game].owed != 0;
    }

    // ----------------------------------------------------------- settlement

    /// @notice The EIP-191 ("\x19Ethereum Signed Message:\n32") hash of the report
    ///         digest keccak256(abi.encode(REPORT_TYPEHASH, chainid, this, day, root, totalDebit)).
    function reportDigest(uint64 day, bytes32 root, uint256 totalDebit) public view returns (bytes32 digest) {
        bytes32 typehash = REPORT_TYPEHASH;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, typehash)
            mstore(add(m, 0x20), chainid())
            mstore(add(m, 0x40), address())
            mstore(add(m, 0x60), day)
            mstore(add(m, 0x80), root)
            mstore(add(m, 0xa0), totalDebit)
            mstore(0x20, keccak256(m, 0xc0))
            mstore(0x00, "\x00\x00\x00\x00\x19Ethereum Signed Message:\n32")
            digest := keccak256(0x04, 0x3c)
        }
    }

    /// @notice Posts day `day`'s root, once, with the signatures of at least
    ///         `threshold` distinct registered signers over reportDigest(day, root, totalDebit).
    /// @param signatures One entry per registered signer, in ascending signer-address
    ///        order: the signer's EIP-2098 compact signature as two words (r, then s with
    ///        the y parity in its top bit) if it signed, else its address as one word.
    ///        An entry whose first word is below 2**160 is an address (an r is below 2**160
    ///        with probability 2**-96; such a signature cannot be posted). The signers
    ///        recovered and the addresses given, in entry order, must be exactly the
    ///        registered list: it is checked against the hash in the config slot, so no
    ///        signer list is read. Refusals: see _refusePost.
    function postDay(uint64 day, bytes32 root, uint256 totalDebit, bytes32[] calldata signatures) external {
        bytes32 typehash = REPORT_TYPEHASH;
        bytes32 topic = DayPosted.selector;
        uint256 failure;
        assembly ("memory-safe") {
            mstore(0x00, day)
            mstore(0x20, _dayRoot.slot)
            let slot := keccak256(0x00, 0x40)
            // refused below (DayAlreadyPosted, InvalidProof) unless the day is free and the root non-zero
            failure := or(sload(slot), iszero(root))
            if iszero(failure) {
                let config := sload(_signerConfig.slot)
                // reportDigest(day, root, totalDebit), then the ecrecover input (digest, v, r, s) at m
                let m := mload(0x40)
                mstore(m, typehash)
                mstore(add(m, 0x20), chainid())
                mstore(add(m, 0x40), address())
                mstore(add(m, 0x60), day)
                mstore(add(m, 0x80), root)
                mstore(add(m, 0xa0), totalDebit)
                mstore(0x20, keccak256(m, 0xc0))
                mstore(0x00, "\x00\x00\x00\x00\x19Ethereum Signed Message:\n32")
                mstore(m, keccak256(0x04, 0x3c))
                // rebuild the signer list after it: an address entry is copied, a signature
                // entry is replaced by its signer (ecrecover writes it in place)
                let list := add(m, 0x80)
                let out := list
                let p := signatures.offset
                let end := add(p, shl(5, signatures.length))
                for {} lt(p, end) {} {
                    let r := calldataload(p)
                    if iszero(shr(160, r)) {
                        mstore(out, r)
                        out := add(out, 0x20)
                        p := add(p, 0x20)
                        continue
                    }
                    let vs := calldataload(add(p, 0x20))
                    let s := shr(1, shl(1, vs))
                    mstore(add(m, 0x20), add(27, shr(255, vs)))
                    mstore(add(m, 0x40), r)
                    mstore(add(m, 0x60), s)
                    pop(staticcall(gas(), 0x01, m, 0x80, out, 0x20))
                    // high s (malleable twin) or no signer recovered
                    failure := or(failure, or(gt(s, _SECP256K1_HALF_N), iszero(returndatasize())))
                    out := add(out, 0x20)
                    p := add(p, 0x40)
                }
                // a signature cut short by the end of the array; another list than the registered
                // one; fewer signatures (array words minus list entries) than the threshold
                failure := or(
                    or(failure, gt(p, end)),
                    or(
                        shr(16, xor(keccak256(list, sub(out, list)), config)),
                        lt(sub(signatures.length, shr(5, sub(out, list))), and(shr(8, config), 0xff))
                    )
                )
                if iszero(failure) {
                    sstore(slot, root)
                    mstore(m, root)
                    mstore(add(m, 0x20), totalDebit)
                    mstore(add(m, 0x40), caller())
                    log2(m, 0x60, topic, day)
                }
            }
        }
        if (failure != 0) _refusePost(day, root, totalDebit, signatures);
    }

    function dayRoot(uint64 day) external view returns (bytes32) {
        return _dayRoot[day];
    }

    /// @notice Applies `game`'s debit for `day`, once: min(amount, deposit) goes
    ///         into the claim pool; any shortfall is added to `owed` and the game
    ///         becomes delinquent.
    function applyDebit(uint64 day, bytes32 game, uint256 amount, bytes32[] calldata proof) external {
        bytes32 root = _dayRoot[day];
        if (root == bytes32(0)) revert DayNotPosted();
        (uint256 word, uint256 bit) = _dayBit(day);
        uint256 bits = _debitedBits[game][word];
        if (bits & bit != 0) revert AlreadyDebited();
        if (!_verify(proof, root, _leaf(0, game, amount))) revert InvalidProof();
        _debitedBits[game][word] = bits | bit;

        Game storage g = _games[game];
        uint256 balance = g.deposit;
        uint256 paid = amount < balance ? amount : balance;
        unchecked {
            g.deposit = balance - paid;
        }
        _addPaidIn(paid);
        emit GameDebited(day, game, amount, paid);
        if (paid < amount) {
            uint256 debt = g.owed + (amount - paid);
            g.owed = debt;
            emit GameDelinquent(game, day, debt);
        }
    }

    /// @notice Pays `account`'s credit for `day` to `account`, once, from the pool.
    function claim(uint64 day, address account, uint256 amount, bytes32[] calldata proof) external {
        bytes32 root = _dayRoot[day];
        if (root == bytes32(0)) revert DayNotPosted();
        (uint256 word, uint256 bit) = _dayBit(day);
        uint256 bits = _claimedBits[account][word];
        if (bits & bit != 0) revert AlreadyClaimed();
        if (!_verify(proof, root, _leaf(1, bytes32(uint256(uint160(account))), amount))) revert InvalidProof();
        uint256 totals = _totals;
        uint256 claimedTotal = (totals >> 128) + amount;
        if (claimedTotal > uint128(totals)) revert InsufficientPool();
        _claimedBits[account][word] = bits | bit;
        _totals = (claimedTotal << 128) | uint128(totals);
        emit Claimed(day, account, amount);
        _push(account, amount);
    }

    function claimed(uint64 day, address account) external view returns (bool) {
        (uint256 word, uint256 bit) = _dayBit(day);
        return _claimedBits[account][word] & bit != 0;
    }

    function debited(uint64 day, bytes32 game) external view returns (bool) {
        (uint256 word, uint256 bit) = _dayBit(day);
        return _debitedBits[game][word] & bit != 0;
    }

    function totalPaidIn() external view returns (uint256) {
        return uint128(_totals);
    }

    function totalClaimed() external view returns (uint256) {
        return _totals >> 128;
    }

    // ---------------------------------------------------------------- owner

    function setSigners(address[] calldata signers_, uint256 threshold_) external {
        if (msg.sender != owner) revert NotOwner();
        _setSigners(signers_, threshold_);
    }

    function transferOwnership(address newOwner) external {
        if (msg.sender != owner) revert NotOwner();
        emit OwnershipTransferred(msg.sender, newOwner);
        owner = newOwner;
    }

    function threshold() external view returns (uint256) {
        return (_signerConfig >> 8) & 0xff;
    }

    /// @notice The registered signers, ascending.
    function signers() public view returns (address[] memory list) {
        (uint256 packed, uint256 count) = _loadSigners();
        list = new address[](count);
        for (uint256 i; i < count; ++i) list[i] = _signerAt(packed, i);
    }

    function isSigner(address account) external view returns (bool) {
        (uint256 packed, uint256 count) = _loadSigners();
        return _contains(packed, count, account);
    }

    // ------------------------------------------------------------- internal

    function _setSigners(address[] memory list, uint256 threshold_) private {
        uint256 count = list.length;
        if (count == 0 || count > MAX_SIGNERS || threshold_ == 0 || threshold_ > count) revert InvalidThreshold();
        address prev;
        for (uint256 i; i < count; ++i) {
            if (list[i] <= prev) revert SignersNotAscending();
            prev = list[i];
        }
        // init code: PUSH2 len, DUP1, PUSH1 10, RETURNDATASIZE, CODECOPY, RETURNDATASIZE, RETURN,
        // then the runtime code: STOP followed by the packed 20-byte addresses
        uint256 runtimeLength = 1 + count * 20;
        bytes memory init = new bytes(10 + runtimeLength);
        address data;
        assembly ("memory-safe") {
            let p := add(init, 0x20)
            mstore(p, or(shl(248, 0x61), or(shl(232, runtimeLength), shl(176, 0x80600a3d393df3))))
            mstore8(add(p, 10), 0)
            for { let i := 0 } lt(i, count) { i := add(i, 1) } {
                mstore(add(p, add(11, mul(i, 20))), shl(96, mload(add(list, add(0x20, shl(5, i))))))
            }
            data := create(0, p, mload(init))
        }
        if (data == address(0) || data.code.length != runtimeLength) revert InvalidThreshold();
        _signerData = data;
        uint256 hash = uint256(keccak256(abi.encodePacked(list)));
        _signerConfig = ((hash >> 16) << 16) | (threshold_ << 8) | count;
        emit SignersChanged(list, threshold_);
    }

    /// @dev Copies the packed signer list into fresh memory; returns its address and length.
    function _loadSigners() private view returns (uint256 packed, uint256 count) {
        address data = _signerData;
        count = _signerConfig & 0xff;
        uint256 size = count * 20;
        assembly ("memory-safe") {
            packed := mload(0x40)
            extcodecopy(data, packed, 1, size)
            mstore(0x40, add(packed, and(add(size, 63), not(31))))
        }
    }

    function _signerAt(uint256 packed, uint256 i) private pure returns (address signer) {
        assembly ("memory-safe") {
            signer := shr(96, mload(add(packed, mul(i, 20))))
        }
    }

    function _contains(uint256 packed, uint256 count, address account) private pure returns (bool) {
        for (uint256 i; i < count; ++i) {
            if (_signerAt(packed, i) == account) return true;
        }
        return false;
    }

    /// @dev Explains a refused post, checking in this order: DayAlreadyPosted; a zero
    ///      root (InvalidProof); a signature entry cut short by the end of the array, with a
    ///      high s or from which no signer is recovered (InvalidSignature); fewer signatures
    ///      than the threshold (NotEnoughSignatures); a recovered signer that is not
    ///      registered (NotASigner; so is a signature over another report); registered
    ///      signers out of order or repeated (SignersNotAscending); else wrong or missing
    ///      addresses of the signers that did not sign (InvalidSignerList). Always reverts.
    function _refusePost(uint64 day, bytes32 root, uint256 totalDebit, bytes32[] calldata signatures) private view {
        if (_dayRoot[day] != bytes32(0)) revert DayAlreadyPosted();
        if (root == bytes32(0)) revert InvalidProof();
        bytes32 digest = reportDigest(day, root, totalDebit);
        uint256 n = signatures.length;
        address[] memory recovered = new address[](n / 2);
        uint256 signed;
        for (uint256 i; i < n; ) {
            bytes32 r = signatures[i];
            if (uint256(r) >> 160 == 0) {
                ++i;
                continue;
            }
            if (i + 1 == n) revert InvalidSignature();
            uint256 vs = uint256(signatures[i + 1]);
            uint256 s = vs & (type(uint256).max >> 1);
            if (s > _SECP256K1_HALF_N) revert InvalidSignature();
            address signer = ecrecover(digest, uint8(27 + (vs >> 255)), r, bytes32(s));
            if (signer == address(0)) revert InvalidSignature();
            recovered[signed++] = signer;
            i += 2;
        }
        if (signed < ((_signerConfig >> 8) & 0xff)) revert NotEnoughSignatures();
        (uint256 packed, uint256 count) = _loadSigners();
        address prev;
        for (uint256 i; i < signed; ++i) {
            if (!_contains(packed, count, recovered[i])) revert NotASigner();
            if (recovered[i] <= prev) revert SignersNotAscending();
            prev = recovered[i];
        }
        revert InvalidSignerList();
    }

    function _dayBit(uint64 day) private pure returns (uint256 word, uint256 bit) {
        word = day >> 8;
        bit = 1 << (day & 0xff);
    }

    /// @dev keccak256(bytes.concat(keccak256(abi.encode(kind, id, amount))))
    function _leaf(uint8 kind, bytes32 id, uint256 amount) private pure returns (bytes32 leaf) {
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, kind)
            mstore(add(m, 0x20), id)
            mstore(add(m, 0x40), amount)
            mstore(0x00, keccak256(m, 0x60))
            leaf := keccak256(0x00, 0x20)
        }
    }

    /// @dev Sorted-pair Merkle proof (OpenZeppelin MerkleProof.verifyCalldata).
    function _verify(bytes32[] calldata proof, bytes32 root, bytes32 leaf) private pure returns (bool ok) {
        assembly ("memory-safe") {
            let h := leaf
            let end := add(proof.offset, shl(5, proof.length))
            for { let p := proof.offset } lt(p, end) { p := add(p, 0x20) } {
                let sibling := calldataload(p)
                let o := shl(5, gt(h, sibling))
                mstore(o, h)
                mstore(xor(o, 0x20), sibling)
                h := keccak256(0x00, 0x40)
            }
            ok := eq(h, root)
        }
    }

    function _addPaidIn(uint256 amount) private {
        uint256 totals = _totals;
        uint256 paidIn = uint256(uint128(totals)) + amount;
        if (paidIn > type(uint128).max) revert AmountTooLarge();
        _totals = (totals & ~uint256(type(uint128).max)) | paidIn;
    }

    function _push(address to, uint256 amount) private {
        _call(abi.encodeCall(IERC20.transfer, (to, amount)));
    }

    function _pull(address from, uint256 amount) private {
        _call(abi.encodeCall(IERC20.transferFrom, (from, address(this), amount)));
    }

    /// @dev Calls the token; succeeds if the call did not revert and returned
    ///      true (or nothing, for tokens that return no value).
    function _call(bytes memory data) private {
        address t = address(token);
        bool ok;
        assembly ("memory-safe") {
            ok := call(gas(), t, 0, add(data, 0x20), mload(data), 0x00, 0x20)
            switch returndatasize()
            case 0 { ok := and(ok, gt(extcodesize(t), 0)) }
            default { ok := and(ok, and(gt(returndatasize(), 31), eq(mload(0x00), 1))) }
        }
        if (!ok) revert TransferFailed();
    }
}
