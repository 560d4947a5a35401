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
///      The signer set lives in the code of a small data contract (written
///      once per setSigners) so postDay reads it with one EXTCODECOPY.
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
    uint256 private constant _U48 = 0xFFFFFFFFFFFF;

    // -------------------------------------------------------------- storage

    /// @notice The settlement token.
    IERC20 public immutable token;
    /// @notice The contract owner (manages the signer set).
    address public owner;

    /// @dev bits 0..159: signer-list data contract; 160..207: threshold; 208..255: signer count.
    uint256 private _signerConfig;
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

    /// @notice Posts day `day`'s root, once. `signatures` must come from at least
    ///         `threshold` distinct registered signers, in strictly ascending
    ///         signer-address order.
    function postDay(uint64 day, bytes32 root, uint256 totalDebit, bytes[] calldata signatures) external {
        if (_dayRoot[day] != bytes32(0)) revert DayAlreadyPosted();
        if (root == bytes32(0)) revert InvalidProof();
        uint256 config = _signerConfig;
        if (signatures.length < ((config >> 160) & _U48)) revert NotEnoughSignatures();
        _checkSignatures(reportDigest(day, root, totalDebit), signatures, config);
        _dayRoot[day] = root;
        emit DayPosted(day, root, totalDebit, msg.sender);
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
        return (_signerConfig >> 160) & _U48;
    }

    /// @notice The registered signers, ascending.
    function signers() public view returns (address[] memory list) {
        uint256 config = _signerConfig;
        uint256 count = config >> 208;
        uint256 packed = _loadSigners(config);
        list = new address[](count);
        for (uint256 i; i < count; ++i) list[i] = _signerAt(packed, i);
    }

    function isSigner(address account) external view returns (bool) {
        uint256 config = _signerConfig;
        return _contains(_loadSigners(config), config >> 208, account);
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
        _signerConfig = (count << 208) | (threshold_ << 160) | uint160(data);
        emit SignersChanged(list, threshold_);
    }

    /// @dev Copies the packed signer list into fresh memory and returns its address.
    function _loadSigners(uint256 config) private view returns (uint256 packed) {
        address data = address(uint160(config));
        uint256 size = (config >> 208) * 20;
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

    /// @dev Reverts unless every signature is valid, by a registered signer, and
    ///      the signers strictly ascend. Both lists ascend, so one forward walk
    ///      over the signer list checks membership.
    function _checkSignatures(bytes32 digest, bytes[] calldata signatures, uint256 config) private view {
        uint256 count = config >> 208;
        uint256 packed = _loadSigners(config);
        uint256 failure; // 1: malformed or invalid signature, 2: signer not found going forward
        uint256 signer;
        uint256 prev;
        assembly ("memory-safe") {
            // ecrecover input (digest, v, r, s) in unallocated memory
            let m := mload(0x40)
            mstore(m, digest)
            let pos := 0
            let end := add(signatures.offset, shl(5, signatures.length))
            for { let head := signatures.offset } lt(head, end) { head := add(head, 0x20) } {
                let sig := add(signatures.offset, calldataload(head))
                let s := calldataload(add(sig, 0x40))
                let v := byte(0, calldataload(add(sig, 0x60)))
                if lt(v, 27) { v := add(v, 27) }
                if or(or(iszero(eq(calldataload(sig), 65)), gt(s, _SECP256K1_HALF_N)), iszero(or(eq(v, 27), eq(v, 28)))) {
                    failure := 1
                    break
                }
                mstore(add(m, 0x20), v)
                mstore(add(m, 0x40), calldataload(add(sig, 0x20)))
                mstore(add(m, 0x60), s)
                mstore(0x00, 0)
                pop(staticcall(gas(), 0x01, m, 0x80, 0x00, 0x20))
                signer := mload(0x00)
                if iszero(signer) {
                    failure := 1
                    break
                }
                let listed := 0
                for {} lt(pos, count) { pos := add(pos, 1) } {
                    listed := shr(96, mload(add(packed, mul(pos, 20))))
                    if iszero(lt(listed, signer)) { break }
                }
                if or(eq(pos, count), iszero(eq(listed, signer))) {
                    failure := 2
                    break
                }
                prev := signer
                pos := add(pos, 1)
            }
        }
        if (failure == 1) revert InvalidSignature();
        if (failure == 2) {
            if (signer <= prev && _contains(packed, count, address(uint160(signer)))) revert SignersNotAscending();
            revert NotASigner();
        }
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
