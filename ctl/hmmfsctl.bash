# bash completion for hmmfsctl (installed by make install).
# Commands first, then each command's options; paths where a path goes.

_hmmfsctl()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	local cmd=${COMP_WORDS[1]} opts

	if [ "$COMP_CWORD" -eq 1 ]; then
		COMPREPLY=($(compgen -W "stats sync migrate devop residency ksm --help --version" -- "$cur"))
		return
	fi
	case $prev in
	--to) COMPREPLY=($(compgen -W "device host" -- "$cur")); return ;;
	--op) COMPREPLY=($(compgen -W "fill xor add" -- "$cur")); return ;;
	--set) COMPREPLY=($(compgen -W "run= pages_to_scan= sleep_millisecs= max_page_sharing= use_zero_pages= merge_across_tiers=" -- "$cur"))
	       compopt -o nospace; return ;;
	--offset|--length|--value) return ;;
	esac
	case $cmd in
	stats) opts="--json --watch --watch= --count= --help" ;;
	sync) opts="--help" ;;
	migrate) opts="--to --offset --length --json --help" ;;
	devop) opts="--op --value --offset --length --json --help" ;;
	residency) opts="--offset --length --json --map --human --help" ;;
	ksm) opts="--json --set --help" ;;
	*) return ;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
	else
		COMPREPLY=($(compgen -f -- "$cur"))
	fi
}
complete -o filenames -F _hmmfsctl hmmfsctl
