from auto_review.cli.main import main

main()
